"""Where and how training runs: device choice, DDP process group, autocast.

Multi-GPU / multi-node runs are launched with `torchrun`, which sets RANK,
WORLD_SIZE and LOCAL_RANK; we join the process group PyTorch's way (NCCL on CUDA,
gloo on CPU) and wrap networks in DistributedDataParallel. Nothing home-made.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    amp_dtype: torch.dtype | None = None  # bf16 on CUDA by default
    channels_last: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def select_device(name: str = "auto", *, local_rank: int = 0) -> torch.device:
    """"auto" → cuda:<local_rank>, then mps, then cpu; otherwise the named device."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available; use --device cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def start(*, device: str = "auto", amp: str = "auto", channels_last: str = "auto") -> Runtime:
    """Join the torchrun process group if launched by torchrun, pick device and precision."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = select_device(device, local_rank=local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if chosen.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        log.info("joined process group: rank %d of %d (%s)", rank, world_size, backend)
    use_amp = amp == "bf16" or (amp == "auto" and chosen.type == "cuda")
    use_cl = channels_last == "on" or (channels_last == "auto" and chosen.type == "cuda")
    return Runtime(device=chosen, rank=rank, world_size=world_size, local_rank=local_rank,
                   amp_dtype=torch.bfloat16 if use_amp else None, channels_last=use_cl)


def stop(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()

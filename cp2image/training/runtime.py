"""Where and how training runs: device choice, DDP process group, autocast.

Multi-GPU / multi-node runs are launched with `torchrun`, which sets RANK,
WORLD_SIZE and LOCAL_RANK; we join the process group PyTorch's way (NCCL on CUDA,
gloo on CPU) and wrap networks in DistributedDataParallel. Nothing home-made.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
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


def stop(runtime: Runtime, *, clean: bool | None = None) -> None:
    """Leave the process group so that no rank tears it down under another.

    Why: gloo runs each collective on C++ threads and sockets. A rank that destroys
    its group (closing those sockets) while a peer is still in a collective, or
    whose group is only destroyed at interpreter exit because a DDP reducer caught in
    a reference cycle still holds it, can abort the process with "terminate called
    without an active exception". So, in order:

    1. collect garbage: DDP wrappers in cycles release their reference to the group;
    2. finish queued device work (CUDA) and meet every rank at a barrier, so all
       collective work of every rank is complete before any rank starts teardown;
    3. destroy the group while the interpreter is fully alive.

    `clean` says whether the run ended normally; by default it is read from the
    exception being handled (this is called from a `finally`). After an error the
    other ranks may never reach the barrier, so the group is destroyed without it.
    """
    if not (runtime.distributed and dist.is_initialized()):
        return
    if clean is None:
        clean = sys.exc_info()[0] is None
    gc.collect()
    if clean:
        if runtime.device.type == "cuda":
            torch.cuda.synchronize(runtime.device)
            dist.barrier(device_ids=[runtime.device.index or 0])
        else:
            dist.barrier()
    dist.destroy_process_group()
    log.info("left the process group (rank %d of %d%s)", runtime.rank, runtime.world_size,
             "" if clean else ", after an error: no final barrier")

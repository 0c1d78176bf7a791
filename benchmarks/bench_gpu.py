"""The GPU section: matmul peaks, generation and training in fp32, bf16 autocast and torch.compile.

Runs when `torch.cuda.is_available()`; `python benchmarks/run.py --only gpu
--accelerator-dry-run` runs the same code on the CPU at tiny sizes.
"""
from __future__ import annotations

import numpy as np

from bench_fixtures import bundled_model, model_profiles
from bench_training import TRAIN_BATCH, measure_training_step
from runner_support import Row, count_flops, matmul_peak, rate_row, time_call

def gpu_names(ctx) -> list[str]:
    return ["fp32 matmul peak", "bf16 matmul peak", "generation batch 256, fp32",
            "generation batch 256, bf16 autocast", "generation batch 256, torch.compile",
            f"training batch {TRAIN_BATCH}, fp32", f"training batch {TRAIN_BATCH}, bf16 autocast",
            f"training batch {TRAIN_BATCH}, torch.compile"]


def gpu_run(ctx) -> list[Row]:
    return accelerator_rows(ctx, device="cuda")


def accelerator_rows(ctx, *, device: str) -> list[Row]:
    """Peak, generation and training on `device` in fp32, bf16 autocast and torch.compile.

    Runs for "cuda" when a GPU is present; `run.py --accelerator-dry-run` runs the same
    code on the CPU with a small matmul so that the branch is exercised without a GPU.
    """
    import copy

    import torch

    on_cuda = device.startswith("cuda")
    rows: list[Row] = []
    sync = torch.cuda.synchronize if on_cuda else None
    where = (f"{torch.cuda.get_device_name(0)}; TF32 {torch.backends.cuda.matmul.allow_tf32}"
             if on_cuda else f"dry run on {device}")
    n = (4096 if ctx.quick else 8192) if on_cuda else 512
    for dtype in ("float32", "bfloat16"):
        timing, flops = matmul_peak(n=n, repeats=ctx.repeats, device=device, dtype_name=dtype)
        ctx.gpu_peak_gflops[dtype] = flops / timing.min / 1e9
        name = "fp32 matmul peak" if dtype == "float32" else "bf16 matmul peak"
        rows.append(Row("GPU", name, unit="GFLOP/s", median=flops / timing.median / 1e9,
                        min=flops / max(timing.seconds) / 1e9, note=where))
    cpu_model = bundled_model(ctx)
    batch = 256 if on_cuda else 16
    profiles = model_profiles(ctx, batch)
    net = copy.deepcopy(cpu_model).to(device).eval()
    forward = _generator_forward(net)
    x = torch.as_tensor(_normalised(cpu_model, profiles), device=device)
    flops_img = ctx.cache.get("gen_flops") or count_flops(lambda: forward(x[:8])) / 8
    variants = {
        "generation batch 256, fp32": (forward, None),
        "generation batch 256, bf16 autocast": (forward, torch.bfloat16),
        "generation batch 256, torch.compile": (torch.compile(forward), None),
    }
    for name, (fn, amp) in variants.items():
        def call(fn=fn, amp=amp):
            with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=amp or torch.bfloat16,
                                                        enabled=amp is not None):
                fn(x)
        t = time_call(call, repeats=ctx.repeats, warmup=3, number=10 if on_cuda else 1, sync=sync)
        peak = ctx.gpu_peak_gflops["bfloat16" if amp else "float32"]
        gflops = flops_img * batch / t.median / 1e9
        rows.append(rate_row("GPU", name, t, items=batch, unit="images/s", ratio=gflops / peak,
                             reference="of same-dtype peak", note=f"{gflops:.0f} GFLOP/s; batch {batch}"))
    train_batch = TRAIN_BATCH if on_cuda else 8
    for name, opts in {f"training batch {TRAIN_BATCH}, fp32": {},
                       f"training batch {TRAIN_BATCH}, bf16 autocast": {"bf16": True},
                       f"training batch {TRAIN_BATCH}, torch.compile": {"compile": True}}.items():
        res = measure_training_step(ctx, batch_size=train_batch, steps=ctx.repeats + (3 if on_cuda else 0),
                                    device=device, **opts)
        peak = ctx.gpu_peak_gflops["bfloat16" if opts.get("bf16") else "float32"]
        gflops = res["flops_per_step"] / res["median_s"] / 1e9
        rows.append(Row("GPU", name, unit="samples/s", median=train_batch / res["median_s"],
                        min=train_batch / res["max_s"], ratio=gflops / peak,
                        reference="of same-dtype peak", note=f"{gflops:.0f} GFLOP/s; batch {train_batch}"))
    return rows


def _generator_forward(net):
    """The network call under model.generate (normalised features → image tensor)."""
    for attr in ("generator", "net"):
        if hasattr(net, attr):
            return getattr(net, attr)
    return net


def _normalised(model, profiles: np.ndarray) -> np.ndarray:
    if hasattr(model, "normalise"):
        return np.asarray(model.normalise(profiles), dtype=np.float32)
    return profiles.astype(np.float32)

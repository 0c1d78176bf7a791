"""Speed of CP2Image on this machine: generation latency/throughput and training samples/s.

    .venv/bin/python benchmarks/bench_model.py [--quick]

Prints a Markdown table. Each row is measured in this run; ratios compare rows of the
same run. The paper reports 0.02 s per image (Titan RTX, batch unknown); the target
here is ≤ 2 ms per image batched on 2 CPU cores. On a shared machine the number of
intra-op threads matters (OpenMP spin-waiting), so both 1 and 2 threads are shown.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from cp2image.assets import bundled_model_dir
from cp2image.models import CP2Image, CP2ImageConfig
from cp2image.training.config import TrainConfig
from cp2image.training.objectives import CP2ImageObjective
from cp2image.training.runtime import Runtime


def reference_model(p: int = 453, base_filters: int = 32) -> CP2Image:
    names = [f"Cells_Feature_{i}" for i in range(p)]
    cfg = CP2ImageConfig(feature_names=names, feature_mean=[0.0] * p, feature_scale=[1.0] * p,
                         base_filters=base_filters)
    return CP2Image(cfg).eval()


def time_generation(model: CP2Image, *, batch: int, repeats: int) -> tuple[float, float]:
    """(median wall, median process-CPU) seconds per image for `generate_from_normalised`.

    CPU time is what the work costs; wall time is what a user waits on this (possibly
    busy) machine. With one thread and an idle machine the two agree.
    """
    z = np.random.default_rng(0).standard_normal((batch, model.config.n_features)).astype(np.float32)
    model.generate_from_normalised(z, batch_size=batch)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        model.generate_from_normalised(z, batch_size=batch)
        wall.append((time.perf_counter() - start) / batch)
        cpu.append((time.process_time() - start_cpu) / batch)
    return statistics.median(wall), statistics.median(cpu)


def time_training(base_filters: int, *, p: int, batch: int, steps: int, hidden: bool) -> tuple[float, float]:
    """Training (wall, CPU-time) samples/s of CP2Image steps (D update + G update)."""
    cfg = TrainConfig(base_filters=base_filters, batch_size=batch,
                      gamma_delay=[0] * 5 if hidden else [10**9] * 5)
    names = [f"F{i}" for i in range(p)]
    model_cfg = CP2ImageConfig(feature_names=names, feature_mean=[0.0] * p, feature_scale=[1.0] * p,
                               base_filters=base_filters)
    objective = CP2ImageObjective(cfg, Runtime(device=torch.device("cpu")), model_cfg)
    objective.finalise(lambda net: net)
    g = torch.Generator().manual_seed(0)
    data = {"images": torch.randint(0, 256, (batch, 3, 68, 68), dtype=torch.uint8, generator=g),
            "real": torch.randint(0, 256, (batch, 3, 68, 68), dtype=torch.uint8, generator=g),
            "features": torch.randn(batch, p, generator=g)}
    objective.step(data, 0)
    start, start_cpu = time.perf_counter(), time.process_time()
    for t in range(steps):
        objective.step(data, t)
    return batch * steps / (time.perf_counter() - start), batch * steps / (time.process_time() - start_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    reps = 3 if args.quick else 7
    rows = []
    models = {"reference (p=453, f=32)": reference_model()}
    bundled = bundled_model_dir()
    if (bundled / "model.safetensors").exists():
        start = time.perf_counter()
        models[f"bundled {bundled.name}"] = CP2Image.from_pretrained(bundled)
        rows.append(("load bundled model (offline)", "-", f"{(time.perf_counter() - start) * 1e3:.0f} ms", ""))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, model in models.items():
            one, one_cpu = time_generation(model, batch=1, repeats=reps * 5)
            rows.append((f"generate {name}, batch 1 latency", threads, f"{one * 1e3:.2f} ms/image",
                         f"CPU time {one_cpu * 1e3:.2f} ms/image"))
            for batch in (64, 256):
                many, many_cpu = time_generation(model, batch=batch, repeats=reps)
                rows.append((f"generate {name}, batch {batch}", threads, f"{many * 1e3:.2f} ms/image",
                             f"{1 / many:.0f} images/s wall; CPU time {many_cpu * 1e3:.2f} ms/image; "
                             f"{one / many:.1f}× batch-1 throughput"))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for f in (32, 16):
            sps, sps_cpu = time_training(f, p=453, batch=32, steps=2 if args.quick else 4, hidden=True)
            rows.append((f"train CP2Image f={f}, batch 32, hidden loss on", threads, f"{sps:.1f} samples/s",
                         f"{sps_cpu:.1f} samples per CPU-second"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPU cores, 1-min load average at end {load:.1f}, torch {torch.__version__}\n")
    print("| measurement | threads | result | note |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


if __name__ == "__main__":
    main()

"""Feature-measurement throughput: crops/s per measurement group and vs worker count.

Run: `.venv/bin/python benchmarks/bench_features.py [--n 1024] [--jobs 1 2] [--dataset DIR | --real-npz NPZ]`.

Crops come from --real-npz (real BBBC021 crops), else the bundled dataset when it
exists (or --dataset), else seeded synthetic cells drawn with numpy (said in the output). Prints two Markdown tables:

1. per stage, on one process, for one chunk of crops already in memory: CPU
   milliseconds per crop and the crops/s that stage alone would allow — where
   the time goes;
2. end-to-end `measure(images, client=...)` wall-clock crops/s on a dask
   LocalCluster of w worker processes (started and warmed before timing, as
   `cp2image features --jobs w` runs it), with the ratio to one worker measured
   in the same run.

The machine's other load is printed (os.getloadavg) because wall-clock rates on
a shared machine move with it; CPU times move much less, so table 2 also gives
crops per CPU-second (this process plus its workers, read on each worker with
`client.run(time.process_time)`) and the rate w workers
would reach with w free cores (w × crops per CPU-second; an upper bound that
ignores the parent's share).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cp2image.features import feature_names, measure  # noqa: E402
from cp2image.features.measure import GROUPS, MeasureConfig, _Batch  # noqa: E402
from cp2image.features.segmentation import segment_batch  # noqa: E402


def synthetic_crops(n: int, *, seed: int = 0, size: int = 68) -> np.ndarray:
    """Seeded cells: a bright elliptical nucleus inside a textured elliptical cell."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float64) - (size - 1) / 2.0
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        def ellipse(a: float, b: float, t: float) -> np.ndarray:
            u = yy * np.cos(t) + xx * np.sin(t)
            v = -yy * np.sin(t) + xx * np.cos(t)
            return (u / a) ** 2 + (v / b) ** 2 <= 1.0

        nuc = ellipse(rng.uniform(8, 12), rng.uniform(6, 9), rng.uniform(0, np.pi))
        cell = ellipse(rng.uniform(18, 27), rng.uniform(12, 17), rng.uniform(0, np.pi)) | nuc
        noise = rng.normal(0, 4, (3, size, size))
        img = 8 + noise
        img[0] += rng.uniform(120, 230) * nuc
        img[1] += rng.uniform(50, 120) * cell * (0.7 + 0.6 * rng.random((size, size)))
        img[2] += rng.uniform(50, 120) * cell * (0.7 + 0.6 * rng.random((size, size)))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def real_crops(npz: Path, n: int) -> np.ndarray:
    """Real BBBC021 crops (uint16 (N, 68, 68, 3)) → uint8 (n, 3, 68, 68), each crop/channel scaled to its max."""
    with np.load(npz, allow_pickle=False) as data:
        raw = data["images"]
        raw = raw[np.linspace(0, len(raw) - 1, min(n, len(raw))).astype(int)]
    x = raw.astype(np.float32).transpose(0, 3, 1, 2)
    peak = x.reshape(len(x), 3, -1).max(axis=2)[:, :, None, None]
    return np.clip(np.rint(x / np.maximum(peak, 1.0) * 255.0), 0, 255).astype(np.uint8)


def load_crops(n: int, dataset: str | None, real_npz: str | None = None) -> tuple[np.ndarray, str]:
    from cp2image.assets import bundled_dataset_dir
    from cp2image.data.dataset import open_dataset

    if real_npz:
        x = real_crops(Path(real_npz), n)
        return x, f"{len(x)} real BBBC021 crops from {real_npz} (per-crop max scaled)"
    path = Path(dataset) if dataset else bundled_dataset_dir()
    if (path / "dataset.json").exists():
        ds = open_dataset(path)
        take = min(n, len(ds))
        return np.asarray(ds.images[:take]), f"{take} crops of {path}"
    return synthetic_crops(n), f"{n} synthetic crops (no dataset at {path})"


def stage_table(images: np.ndarray, cfg: MeasureConfig) -> list[tuple[str, float]]:
    """CPU ms per crop of segmentation and of each group, on one chunk, in this process."""
    chunk = images[: cfg.chunk_size]
    segment_batch(chunk[:4])  # warm caches / JIT
    t = time.process_time()
    seg = segment_batch(chunk)
    rows = [("segmentation", (time.process_time() - t) / len(chunk))]
    ok = seg.ok
    batch = _Batch(chunk[ok], {"Nuclei": seg.nucleus[ok], "Cells": seg.cell[ok], "Cytoplasm": seg.cytoplasm[ok]})
    t = time.process_time()
    batch.x, batch.mosaic  # noqa: B018 - build once, shared by the groups below
    rows.append(("mosaic + float copy", (time.process_time() - t) / len(chunk)))
    for g in cfg.groups:
        t = time.process_time()
        GROUPS[g][1](batch, cfg)
        rows.append((g, (time.process_time() - t) / len(chunk)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024, help="crops for the end-to-end runs")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    ap.add_argument("--dataset", default=None, help="dataset directory (default: the bundled one)")
    ap.add_argument("--real-npz", default=None,
                    help="real BBBC021 crops, e.g. ../shared/data/bbbc021-cells/bbbc021_cells_68x68.npz")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    images, source = load_crops(args.n, args.dataset, args.real_npz)
    cfg = MeasureConfig()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# Feature measurement benchmark\n\n{source}; {len(feature_names(cfg))} features; "
          f"{cores} cores; load average {os.getloadavg()[0]:.1f} at start\n")

    stages = stage_table(images, cfg)
    total = sum(s for _, s in stages)
    print(f"## Where the time goes (one process, chunk of {min(cfg.chunk_size, len(images))} crops, CPU time)\n")
    print("| stage | CPU ms / crop | share | crops/s if alone |")
    print("|---|---:|---:|---:|")
    for name, sec in stages:
        print(f"| {name} | {sec * 1e3:.2f} | {sec / total:.0%} | {1 / sec:,.0f} |")
    print(f"| **total** | **{total * 1e3:.2f}** | 100% | **{1 / total:,.0f}** |\n")

    from cp2image.distributed import ClusterConfig, dask_client

    print(f"## End to end: measure(images, client=LocalCluster(w)) on {len(images)} crops (wall clock, best of {args.repeats})\n")
    print("| workers | wall s | crops/s (wall) | × 1 worker | CPU s (all processes) | crops per CPU-s | "
          "crops/s if the workers had their cores to themselves | load avg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = None
    for w in args.jobs:
        best = (float("inf"), 0.0)
        with dask_client(ClusterConfig(n_workers=w)) as client:
            measure(images[:8], client=client)  # warm-up: imports and JIT caches on every worker
            for _ in range(args.repeats):
                c0, w0 = time.process_time(), sum(client.run(time.process_time).values())
                t = time.perf_counter()
                frame = measure(images, client=client)
                wall = time.perf_counter() - t
                cpu = time.process_time() - c0 + sum(client.run(time.process_time).values()) - w0
                best = min(best, (wall, cpu))
        wall, cpu = best
        rate = len(images) / wall
        base = base or rate
        per_cpu = len(images) / cpu
        print(f"| {w} | {wall:.2f} | {rate:,.0f} | {rate / base:.2f} | {cpu:.2f} | {per_cpu:,.0f} | "
              f"{per_cpu * w:,.0f} | {os.getloadavg()[0]:.1f} |")
    failed = int(frame["Metadata_Segmentation_Failed"].sum())
    print(f"\nsegmentation succeeded on {len(images) - failed}/{len(images)} crops")


# ----------------------------------------------------------------------------- runner section: features (benchmarks/run.py)

from runner_support import Row, rate_row, time_call  # noqa: E402
from bench_fixtures import bundled_dataset, cores  # noqa: E402


def _feature_workers(ctx) -> list[int]:
    n_cores = cores()
    return sorted({1, n_cores})


def features_names(ctx) -> list[str]:
    return ["measure, all cores"] + [f"crops/s vs workers: {w}" for w in _feature_workers(ctx)]


def _feature_crops(ctx, n: int) -> tuple[np.ndarray, str]:
    """`n` crops from the bundled dataset, else freshly simulated (render only, no features)."""
    try:
        return np.asarray(bundled_dataset(ctx).images[:n]), "bundled crops"
    except Exception:
        from cp2image.data import open_dataset
        from cp2image.data.simulate.pipeline import SimulationConfig, simulate_screen
        from cp2image.data.simulate.screen import ScreenConfig

        tmp = Path(tempfile.mkdtemp(prefix="cp2image-bench-")) / "sim"
        simulate_screen(tmp, SimulationConfig(screen=ScreenConfig(n_cells=n, replicates=1), measure=False))
        return np.asarray(open_dataset(tmp).images), "freshly simulated crops (bundled dataset absent)"


def features_run(ctx) -> list[Row]:
    """Crops/s of `measure` on a dask LocalCluster of w worker processes (as `cp2image features`
    runs it); the cluster is started and warmed before timing, so its start-up is not counted."""
    from cp2image.distributed import ClusterConfig, dask_client
    from cp2image.features import measure

    images, source = _feature_crops(ctx, 64 if ctx.quick else 400)
    n = len(images)
    rows = []
    by_workers = {}
    for w in _feature_workers(ctx):
        with dask_client(ClusterConfig(n_workers=w)) as client:
            measure(images[:4], client=client)  # warm-up: imports, JIT caches on the workers
            t = time_call(lambda: measure(images, client=client), repeats=1 if ctx.quick else 2, warmup=0)
        by_workers[w] = rate_row("Features", f"crops/s vs workers: {w}", t, items=n, unit="crops/s")
    best = by_workers[max(by_workers)]
    rows.append(Row("Features", "measure, all cores", unit="crops/s", median=best.median, min=best.min,
                    target="≥ 200 crops/s", met=best.median >= 200,
                    note=f"cp2image.features.measure on {n} {source} as dask tasks (LocalCluster, "
                         f"{max(by_workers)} workers, started before timing), {len(measure(images[:1]).columns) - 1} features; "
                         f"load average {os.getloadavg()[0]:.1f}"))
    base = by_workers[1].median
    for w, r in by_workers.items():
        r.ratio, r.reference = r.median / base, "× 1 worker"
        rows.append(r)
    return rows


if __name__ == "__main__":
    main()

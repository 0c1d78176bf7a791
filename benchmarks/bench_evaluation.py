"""Evaluation at scale: time and peak memory of `evaluate` on 10k held-out cells.

Run: `.venv/bin/python benchmarks/bench_evaluation.py [--cells 10000] [--jobs 2]
      [--inception PATH --inception-cells 200]`

Draws synthetic cells (elliptic nucleus + cell body, three classes), writes them as a
dataset (all `--cells` held out as "test", plus 2,000 "train" cells for the encoder and
the MoA classifier), and evaluates a stand-in reconstruction model (originals plus
pixel noise) with everything on: features measured on 2 × N crops, domain encoder
trained, Fréchet/KID in CellProfiler and encoder space, correlation, MoA fidelity and
the report. Prints a Markdown table of seconds per stage, cells/s and peak RSS.
Inception is optional (its CPU cost is per image; give --inception-cells to time it).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cp2image.channels import CROP_SIZE  # noqa: E402

CLASSES = {"DMSO": (7.0, 1.8), "Big nuclei": (10.5, 1.6), "Small cells": (6.0, 1.3)}


def draw(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """uint8 (n, 3, 68, 68) crops of ellipse cells whose size depends on their class."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:CROP_SIZE, :CROP_SIZE].astype(np.float32)
    c = (CROP_SIZE - 1) / 2
    names = list(CLASSES)
    labels = [names[i % 3] for i in range(n)]
    out = np.empty((n, 3, CROP_SIZE, CROP_SIZE), dtype=np.uint8)
    for i, label in enumerate(labels):
        r, ratio = CLASSES[label]
        a, b, t = r * rng.uniform(0.8, 1.25), r * rng.uniform(0.7, 1.0), rng.uniform(0, np.pi)
        u = (yy - c) * np.cos(t) - (xx - c) * np.sin(t)
        v = (yy - c) * np.sin(t) + (xx - c) * np.cos(t)
        nucleus = (u / a) ** 2 + (v / b) ** 2 <= 1
        cell = (u / (a * ratio)) ** 2 + (v / (b * ratio)) ** 2 <= 1
        img = np.stack([10 + rng.uniform(120, 230) * nucleus, 10 + rng.uniform(60, 120) * cell,
                        10 + rng.uniform(60, 120) * cell]) + rng.normal(0, 3, (3, CROP_SIZE, CROP_SIZE))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out, labels


class NoisyAutoencoder:
    """Stand-in reconstruction model: the original crop plus Gaussian pixel noise (sd 8)."""

    def reconstruct(self, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        rng = np.random.default_rng(0)
        out = np.empty_like(np.asarray(images))
        for start in range(0, len(images), batch_size):  # chunked, so the stand-in adds no memory peak
            batch = np.asarray(images[start:start + batch_size], dtype=np.float32)
            noisy = batch + rng.normal(0, 8, batch.shape).astype(np.float32)
            out[start:start + len(batch)] = np.clip(noisy, 0, 255).astype(np.uint8)
        return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished worker processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=10_000, help="held-out cells evaluated")
    parser.add_argument("--train-cells", type=int, default=2_000)
    parser.add_argument("--jobs", type=int, default=2, help="feature measurement processes")
    parser.add_argument("--inception", default=None, help="FID Inception TorchScript file (optional)")
    parser.add_argument("--inception-cells", type=int, default=200)
    args = parser.parse_args()

    from cp2image.data.dataset import write_dataset
    from cp2image.evaluation import EvaluationConfig, build_reference, evaluate_against, write_outputs
    from cp2image.features import measure

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    n = args.cells + args.train_cells
    images, labels = draw(n, seed=0)
    t_draw = time.perf_counter() - t0
    cells = pd.DataFrame({
        "Metadata_Plate": "P1", "Metadata_Well": [f"W{i // 50:04d}" for i in range(n)],
        "Metadata_Compound": labels, "Metadata_Concentration": 1.0, "Metadata_MoA": labels,
        "Metadata_Split": ["test"] * args.cells + ["train"] * args.train_cells,
    })
    t1 = time.perf_counter()
    cells = pd.concat([cells, measure(images, n_jobs=args.jobs)], axis=1)  # the dataset's own profiles
    t_dataset = time.perf_counter() - t1
    with tempfile.TemporaryDirectory() as tmp:
        path = write_dataset(Path(tmp) / "bench", images, cells)
        del images
        config = EvaluationConfig(max_cells=None, max_train_cells=args.train_cells, n_jobs=args.jobs,
                                  inception=args.inception, inception_max_cells=args.inception_cells,
                                  encoder_dir=str(Path(tmp) / "encoder"))
        if args.inception is None:
            os.environ.pop("CP2IMAGE_INCEPTION", None)
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        reference = build_reference(path, config=config)
        t_reference = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate_against(NoisyAutoencoder(), reference, config=config)
        t_model = time.perf_counter() - start
        start = time.perf_counter()
        write_outputs(result, Path(tmp) / "out", config=config)
        t_write = time.perf_counter() - start
        cpu_used = cpu_seconds() - cpu_start
    timings = result.metrics.timings_s
    rows = [("draw synthetic cells (setup)", t_draw), ("measure dataset profiles (setup)", t_dataset)]
    rows += [(f"reference: {k.removeprefix('reference_')}", v) for k, v in timings.items() if k.startswith("reference_")]
    rows += [(k, v) for k, v in timings.items() if not k.startswith("reference_")]
    rows += [("write outputs + report", t_write)]
    total = t_reference + t_model + t_write
    print(f"## Evaluation of {args.cells} held-out cells ({args.train_cells} training cells), "
          f"{args.jobs} measurement process(es), load average at start {load:.1f}\n")
    print("| stage | seconds |")
    print("|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} |")
    print(f"| **evaluation total (reference + model + outputs)** | **{total:.1f}** |")
    print(f"\nThroughput: {args.cells / total:.0f} held-out cells/s end to end; {cpu_used:.0f} CPU-seconds "
          f"(this process + measurement workers; wall time grows with the machine's load); "
          f"peak RSS of the main process {peak_rss_mb():.0f} MB.")
    h = result.metrics.headline.to_dict()
    print(f"Sanity: fraction r > 0.5 = {h['fraction_r_above_0.5']:.3f}, MoA accuracy real/generated = "
          f"{h['moa_accuracy_real']:.3f}/{h['moa_accuracy_generated']:.3f}")


if __name__ == "__main__":
    main()

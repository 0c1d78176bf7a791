"""Training step speed and the data loader's rate, as the trainer runs them (runner sections).

Run through `python benchmarks/run.py --only training loader`. Training is measured with
the trainer's own objective at steady state (every hidden-layer loss on), its FLOPs
counted with FlopCounterMode; the loader is compared with training's consumption rate
measured in the same run.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench_fixtures import REFERENCE_FEATURES, bundled_dataset
from runner_support import Row, count_flops, rate_row, time_call

TRAIN_BATCH = 104  # the original work's batch size


def _train_batches(ctx) -> list[int]:
    return [8, TRAIN_BATCH] if ctx.quick else [16, 32, 64, TRAIN_BATCH, 208]


def training_names(ctx) -> list[str]:
    return ([f"throughput, batch {TRAIN_BATCH}", "step FLOP/s"]
            + [f"throughput vs batch: {b}" for b in _train_batches(ctx)])


STEADY_STEP = 10_000  # a step index after every γ_i has ramped in (full generator loss)


def _training_data(ctx) -> tuple[Any, str]:
    """(dataset, note): the bundled dataset, else a synthetic one of the same crop format."""
    if "train_data" not in ctx.cache:
        try:
            ctx.cache["train_data"] = (bundled_dataset(ctx), "bundled dataset")
        except Exception:
            from cp2image.data import open_dataset, write_dataset

            n = 2048
            rng = np.random.default_rng(0)
            import pandas as pd

            cells = pd.DataFrame(rng.normal(size=(n, REFERENCE_FEATURES)),
                                 columns=[f"Nuclei_Reference_{i}" for i in range(REFERENCE_FEATURES)])
            cells["Metadata_Plate"], cells["Metadata_Well"] = "P1", "B02"
            cells["Metadata_Compound"], cells["Metadata_Concentration"] = "DMSO", 0.0
            cells["Metadata_Split"] = "train"
            images = rng.integers(0, 256, size=(n, 3, 68, 68), dtype=np.uint8)
            tmp = Path(tempfile.mkdtemp(prefix="cp2image-bench-"))
            ctx.cache["train_data"] = (open_dataset(write_dataset(tmp / "synthetic", images, cells)),
                                       f"synthetic {n}-cell dataset (bundled dataset absent)")
    return ctx.cache["train_data"]


def _training_setup(ctx, *, batch_size: int, device: str = "cpu", bf16: bool = False,
                    compile: bool = False):
    """The trainer's own objective (G + D, optimisers) and a real batch from its loader classes."""
    import torch

    from cp2image.models.cp2image import CP2ImageConfig
    from cp2image.training import runtime as rt_mod
    from cp2image.training.config import TrainConfig
    from cp2image.training.data import CellBatches, images_file, prepare_features, training_rows
    from cp2image.training.objectives import OBJECTIVES

    dataset, note = _training_data(ctx)
    config = TrainConfig(batch_size=batch_size, device=device, amp="bf16" if bf16 else "off",
                         compile=compile, progress=False)
    runtime = rt_mod.start(device=device, amp=config.amp, channels_last=config.channels_last)
    rows = training_rows(dataset, config.split)
    table = prepare_features(dataset, rows, features=config.features,
                             max_nonfinite_fraction=config.max_nonfinite_fraction)
    model_config = CP2ImageConfig(feature_names=table.names, feature_mean=table.mean.tolist(),
                                  feature_scale=table.scale.tolist(), image_size=int(dataset.images.shape[-1]),
                                  channels=dataset.channels)
    torch.manual_seed(0)
    objective = OBJECTIVES["cp2image"](config, runtime, model_config)
    objective.finalise(torch.compile if compile else (lambda net: net))
    features_path = Path(tempfile.mkdtemp(prefix="cp2image-bench-")) / "features.npy"
    from cp2image.training.data import write_feature_matrix

    write_feature_matrix(features_path, table.standardised)
    batches = CellBatches(images_file(dataset), table.rows, features_path)
    n = len(table.rows)
    pick = np.random.default_rng(0)
    batch = batches[(np.sort(pick.choice(n, batch_size, replace=n < batch_size)),
                     np.sort(pick.choice(n, batch_size, replace=n < batch_size)))]
    return objective, batch, batches, table, f"{note}, p = {len(table.names)}"


def measure_training_step(ctx, *, batch_size: int, steps: int, device: str = "cpu", bf16: bool = False,
                          compile: bool = False) -> dict[str, Any]:
    """Seconds per full training step (D update + G update with every hidden loss on)."""
    import torch

    objective, batch, _, _, note = _training_setup(ctx, batch_size=batch_size, device=device,
                                                   bf16=bf16, compile=compile)
    for net in objective.nets.values():
        net.train()
    step = lambda: objective.step(batch, STEADY_STEP)  # noqa: E731
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    # A step's FLOPs are exactly proportional to the batch: count once per sample (at batch 8).
    key = f"train_flops_per_sample:{device}"
    if key not in ctx.cache and not compile:
        small = {k: v[:8] for k, v in batch.items()}
        ctx.cache[key] = count_flops(lambda: objective.step(small, STEADY_STEP)) / 8
    flops = ctx.cache[key] * batch_size if key in ctx.cache else None
    timing = time_call(step, repeats=steps, warmup=2 if compile else (0 if ctx.quick else 1), sync=sync)
    return {"median_s": timing.median, "max_s": max(timing.seconds), "flops_per_step": flops, "note": note}


def training_run(ctx) -> list[Row]:
    rows: list[Row] = []
    results = {b: measure_training_step(ctx, batch_size=b, steps=1 if ctx.quick else min(ctx.repeats, 3))
               for b in sorted(set(_train_batches(ctx)) | {TRAIN_BATCH})}
    for b in _train_batches(ctx):
        res = results[b]
        frac = ctx.fraction_of_peak(res["flops_per_step"] / res["median_s"] / 1e9)
        rows.append(Row("Training", f"throughput vs batch: {b}", unit="samples/s",
                        median=b / res["median_s"], min=b / res["max_s"], ratio=frac,
                        reference="of fp32 peak"))
    res = results[TRAIN_BATCH]
    ctx.train_samples_per_s = TRAIN_BATCH / res["median_s"]
    gflops = res["flops_per_step"] / res["median_s"] / 1e9
    frac = ctx.fraction_of_peak(gflops)
    rows.insert(0, Row("Training", f"throughput, batch {TRAIN_BATCH}", unit="samples/s",
                       median=ctx.train_samples_per_s, min=TRAIN_BATCH / res["max_s"],
                       note=f"trainer's CP2ImageObjective.step at steady state (all γ_i on); {res['note']}"))
    rows.insert(1, Row("Training", "step FLOP/s", unit="GFLOP/s", median=gflops,
                       min=res["flops_per_step"] / res["max_s"] / 1e9, ratio=frac,
                       reference="of fp32 peak", target="≥ 0.3 of peak",
                       met=None if frac is None else frac >= 0.3,
                       note=f"{res['flops_per_step'] / 1e9:.1f} GFLOP per step (G + D, forward + backward, "
                            "FlopCounterMode)"))
    return rows


def loader_names(ctx) -> list[str]:
    return ["data loader throughput"]


def loader_run(ctx) -> list[Row]:
    """The trainer's DataLoader (CellBatches + PairedSampler, default workers) without training."""
    from torch.utils.data import DataLoader

    from cp2image.training.config import TrainConfig
    from cp2image.training.data import PairedSampler, StepSampler

    _, _, batches, table, note = _training_setup(ctx, batch_size=TRAIN_BATCH)
    config = TrainConfig()
    n_steps = 10 if ctx.quick else 50

    def iterate():
        sampler = PairedSampler(
            StepSampler(len(table.rows), global_batch=TRAIN_BATCH, start_step=0, end_step=n_steps, seed=0, stream=0),
            StepSampler(len(table.rows), global_batch=TRAIN_BATCH, start_step=0, end_step=n_steps, seed=0, stream=1))
        for _ in DataLoader(batches, sampler=sampler, batch_size=None, num_workers=config.num_workers):
            pass

    timing = time_call(iterate, repeats=ctx.repeats)
    row = rate_row("Data loader", "data loader throughput", timing, items=n_steps * TRAIN_BATCH,
                   unit="samples/s", target="≥ 3× training",
                   note=f"trainer's DataLoader, num_workers={config.num_workers}, memory-mapped crops; {note}")
    if ctx.train_samples_per_s:
        row.ratio, row.reference = row.median / ctx.train_samples_per_s, "× training's need"
        row.met = row.ratio >= 3
    return [row]

"""The paper's Table 1 protocol: train VAE, VAEplus, LSGAN and CP2Image with several
seeds, evaluate each on the held-out split, and tabulate mean ± sd of every distance.

One reference (real held-out cells measured, domain encoder trained, Inception
features when weights are given) is shared by all runs, so every number in a row is
measured in the same space. Runs are resumable: a finished run's `evaluation.json`
is reused, an interrupted training resumes from its checkpoint, and the table is
rewritten after every run, so a partial table always exists.

Layout of `out_dir`:
    encoder/                     the shared domain encoder (safetensors + json)
    runs/<model>-seed<k>/        trainer output (model/, metrics.csv, grids/) + evaluation.json
    results.csv                  one row per finished run (headline metrics)
    table1.md                    the Markdown table
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cp2image.evaluation.config import EvaluationConfig
from cp2image.evaluation.metrics import jsonable
from cp2image.evaluation.reference import build_reference
from cp2image.evaluation.run import evaluate_against

logger = logging.getLogger(__name__)

MODEL_ORDER = ("vae", "vaeplus", "lsgan", "cp2image")
MODEL_LABELS = {"vae": "VAE", "vaeplus": "VAEplus", "lsgan": "LSGAN", "cp2image": "CP2Image"}
PAPER_FID = {"vae": "351.96 ± 5.3", "vaeplus": "27.98 ± 3.8", "lsgan": "24.79 ± 2.0", "cp2image": "68.42 ± 1.9"}
ROWS: tuple[tuple[str, str, int], ...] = (  # headline key, label, decimals
    ("fid_inception", "FID (Inception-v3)", 2),
    ("kid_inception", "KID (Inception-v3)", 4),
    ("frechet_cellprofiler", "Fréchet distance, CellProfiler features†", 2),
    ("kid_cellprofiler", "KID, CellProfiler features†", 4),
    ("frechet_encoder", "Fréchet distance, domain encoder†", 3),
    ("kid_encoder", "KID, domain encoder†", 4),
    ("generated_unmeasurable_fraction", "generated crops that could not be segmented (fraction)", 3),
    ("fraction_r_above_0.5", "features with r > 0.5 (paired models)", 3),
    ("moa_accuracy_generated", "MoA accuracy on generated (paired models)", 3),
    ("moa_accuracy_real", "MoA accuracy on real held-out (ceiling)", 3),
)


@dataclass
class Table1Config:
    """CPU-scaled Table 1 protocol (the paper trained for hours on a GPU)."""

    models: list[str] = field(default_factory=lambda: list(MODEL_ORDER))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = 300  # optimiser steps per run (paper: many epochs over 390k cells)
    batch_size: int = 32  # paper: 104
    base_filters: int = 16  # paper: 32
    latent_dim: int = 128  # VAE / LSGAN latent size
    num_threads: int = 1  # torch threads per run (1 is fastest on a shared machine)
    max_train_cells: int | None = None  # cap on training cells (None = the whole train split)
    eval_cells: int = 500  # held-out cells evaluated per run
    classifier_train_cells: int = 2000  # real training cells measured for the MoA classifier
    kid_subsets: int = 100
    kid_subset_size: int = 250
    inception: str | None = None  # FID Inception TorchScript file (None → $CP2IMAGE_INCEPTION or skipped)
    inception_cells: int | None = 200  # of the evaluated cells, how many go through Inception (slow on CPU)
    progress: bool = False

    def train_config(self, model: str, seed: int):
        from cp2image.training.config import TrainConfig

        # discriminator-loss delays and ramps scaled from the reference 20k-step schedule
        frac_delay = [0.1, 0.15, 0.2, 0.25, 0.3]
        return TrainConfig(
            model=model, steps=self.steps, batch_size=self.batch_size, base_filters=self.base_filters,
            latent_dim=self.latent_dim, seed=seed, num_threads=self.num_threads, max_cells=self.max_train_cells,
            gamma_delay=[int(f * self.steps) for f in frac_delay], gamma_ramp=[max(1, self.steps // 10)] * 5,
            log_every=max(1, self.steps // 20), grid_every=self.steps, checkpoint_every=max(1, self.steps // 4),
            progress=self.progress, device="cpu",
        )

    def evaluation_config(self, out_dir: Path) -> EvaluationConfig:
        return EvaluationConfig(
            max_cells=self.eval_cells, max_train_cells=self.classifier_train_cells, kid_subsets=self.kid_subsets,
            kid_subset_size=self.kid_subset_size, inception=self.inception, inception_max_cells=self.inception_cells,
            encoder_dir=str(out_dir / "encoder"),
            progress=self.progress,
        )


def _train(config: Table1Config, model: str, seed: int, data: Path, run_dir: Path) -> Path:
    from cp2image.training.trainer import Trainer

    model_dir = run_dir / "model"
    if (model_dir / "model.safetensors").is_file():
        return model_dir
    resume = (run_dir / "checkpoint.safetensors").is_file()
    trainer = Trainer(config.train_config(model, seed), data, run_dir, resume=resume,
                      command=f"cp2image table1 (model={model}, seed={seed})")
    result = trainer.run()
    return result.model_dir or model_dir


def format_table(results: pd.DataFrame, *, models: list[str], seeds_planned: int) -> str:
    """Markdown table: metric rows × model columns, mean ± sd over seeds (sd with ddof=1)."""
    header = "| metric | " + " | ".join(MODEL_LABELS.get(m, m) for m in models) + " |"
    lines = [header, "|---|" + "---|" * len(models)]
    for key, label, digits in ROWS:
        cells = []
        for m in models:
            values = results.loc[results["model"] == m, key] if key in results else pd.Series(dtype=float)
            values = pd.to_numeric(values, errors="coerce").dropna().to_numpy()
            if len(values) == 0:
                cells.append("n/a")
            elif len(values) == 1:
                cells.append(f"{values[0]:.{digits}f} (1 seed)")
            else:
                note = "" if len(values) == seeds_planned else f" ({len(values)} seeds)"
                cells.append(f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}{note}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| paper FID (BBBC021, GPU-trained) | " + " | ".join(PAPER_FID.get(m, "") for m in models) + " |")
    return "\n".join(lines)


def run_table1(data: str | Path, out_dir: str | Path, *, config: Table1Config | None = None,
               command: str = "") -> pd.DataFrame:
    """Train and evaluate every model × seed; write results.csv and table1.md after each run."""
    config = config or Table1Config()
    unknown = [m for m in config.models if m not in MODEL_ORDER]
    if unknown:
        raise ValueError(f"unknown model kind(s) {unknown}; choose from {list(MODEL_ORDER)}")
    data, out = Path(data), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table1_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    eval_config = config.evaluation_config(out)
    reference = None  # built on first need, so re-running a finished table is instant
    reference_seconds = 0.0
    rows: list[dict[str, Any]] = []
    from cp2image.evaluation.loading import load_for_evaluation

    for seed in config.seeds:  # seed-major: a partial table has every model at least once
        for model in config.models:
            run_dir = out / "runs" / f"{model}-seed{seed}"
            eval_path = run_dir / "evaluation.json"
            if eval_path.is_file():
                metrics = json.loads(eval_path.read_text())
            else:
                t0 = time.perf_counter()
                model_dir = _train(config, model, seed, data, run_dir)
                train_s = time.perf_counter() - t0
                loaded = load_for_evaluation(model_dir)
                if reference is None:
                    started = time.perf_counter()
                    logger.info("building the shared reference on %s", data)
                    reference = build_reference(data, config=eval_config)
                    reference_seconds = time.perf_counter() - started
                t1 = time.perf_counter()
                result = evaluate_against(loaded.model, reference, config=eval_config, model_source=loaded.source)
                metrics = jsonable(result.metrics.to_dict())
                metrics["table1"] = {"train_seconds": round(train_s, 1),
                                     "evaluate_seconds": round(time.perf_counter() - t1, 1)}
                eval_path.write_text(json.dumps(metrics, indent=2) + "\n")
            rows.append({"model": model, "seed": seed, **metrics["headline"],
                         "train_seconds": metrics.get("table1", {}).get("train_seconds"),
                         "evaluate_seconds": metrics.get("table1", {}).get("evaluate_seconds")})
            results = pd.DataFrame(rows)
            results.to_csv(out / "results.csv", index=False)
            _write_markdown(out, results, config=config, data=data, metrics=metrics,
                            reference_seconds=reference_seconds, command=command)
            logger.info("finished %s seed %d", model, seed)
    return pd.DataFrame(rows)


def _write_markdown(out: Path, results: pd.DataFrame, *, config: Table1Config, data: Path, metrics: dict,
                    reference_seconds: float, command: str) -> None:
    """Write table1.md; dataset and Inception details come from the latest run's metrics."""
    done, planned = len(results), len(config.models) * len(config.seeds)
    inception, dataset = metrics.get("inception", {}), metrics.get("dataset", {})
    if inception.get("available"):
        weights = inception.get("weights", {})
        inc = (f"computed on {inception.get('n_real')} of the evaluated cells with {weights.get('path')} "
               f"({weights.get('identity')}); with so few cells FID is biased upwards (compare models "
               "only within this table; KID is unbiased)")
    else:
        inc = f"not computed ({inception.get('reason', 'no Inception weights supplied')})"
    text = [
        "# Table 1 (CPU-scaled reproduction)",
        "",
        f"Runs finished: {done} of {planned}. Dataset: `{data}`, held-out split `{dataset.get('split')}`, "
        f"{dataset.get('n_evaluated')} held-out cells per evaluation.",
        "",
        format_table(results, models=list(config.models), seeds_planned=len(config.seeds)),
        "",
        "Mean ± sd (ddof = 1) over seeds " + ", ".join(str(s) for s in config.seeds) + ". "
        f"Training: {config.steps} steps, batch {config.batch_size}, {config.base_filters} base filters on CPU "
        "(the paper trained each model for hours on a GPU over 390k real cells; these models are far from "
        "converged, so only the ordering and the protocol are meaningful, not the absolute values).",
        "",
        f"FID/KID (Inception-v3): {inc}.",
        "",
        "† Offline distances: not comparable with Inception FID (different feature space). CellProfiler space = "
        "features measured by `cp2image.features.measure` on real and generated crops, standardised with the real "
        "cells' mean and sd; domain encoder = penultimate layer of a small MoA-classifier CNN trained on real "
        "training crops (`encoder/`). LSGAN is unconditional, so correlation and MoA accuracy do not apply (n/a).",
        "",
        "Per-run numbers: `results.csv`; full metrics: `runs/<model>-seed<k>/evaluation.json`"
        + (f"; shared reference built in {reference_seconds:.0f} s." if reference_seconds else "."),
    ]
    if command:
        text += ["", "Command:", "", "```", command, "```"]
    (out / "table1.md").write_text("\n".join(text) + "\n")


__all__ = ["Table1Config", "format_table", "run_table1", "MODEL_ORDER"]

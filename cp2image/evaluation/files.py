"""A model's saved evaluation (`<model dir>/evaluation/`) read back for display (the correlation report and model card pages).

Files written by `cp2image evaluate` (see `cp2image.evaluation`):
- `metrics.json`     nested metrics with a flat "headline" section (FID, KID, fraction of
                     features with r > 0.5, MoA accuracy; null where unavailable);
- `correlation.csv`  one row per feature: feature, pearson_r, ...;
- `pairs.parquet`    long table (cell, feature, real, generated [, Metadata_*]) for scatter plots.
Only `correlation.csv` is required; the others add to the page when present.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

METRICS_FILE = "metrics.json"
CORRELATION_FILE = "correlation.csv"
PAIRS_FILE = "pairs.parquet"


@dataclass
class EvaluationFiles:
    """What a model's evaluation folder holds."""

    directory: Path
    correlation: pd.DataFrame  # feature, pearson_r, … sorted by r descending (NaN last)
    metrics: dict[str, Any]
    pairs_path: Path | None

    def headline(self) -> dict[str, float]:
        """The flat, finite summary numbers: metrics.json's "headline" section if present, else its top level."""
        section = self.metrics.get("headline")
        source = section if isinstance(section, dict) else self.metrics
        out = {}
        for key, value in source.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
                out[key] = float(value)
        return out


def locate_evaluation(model_dir: str | Path) -> Path | None:
    """A model's evaluation folder (`<model dir>/evaluation/` holding `correlation.csv`), or None."""
    folder = Path(model_dir) / "evaluation"
    return folder if (folder / CORRELATION_FILE).is_file() else None


def read_evaluation(directory: str | Path) -> EvaluationFiles:
    """Load an evaluation folder; FileNotFoundError / ValueError say what is missing and how to make it."""
    root = Path(directory)
    table_path = root / CORRELATION_FILE
    if not table_path.is_file():
        raise FileNotFoundError(
            f"no {CORRELATION_FILE} in {root}; run `cp2image evaluate --model <weights> --data <dataset> --out {root}`"
        )
    table = pd.read_csv(table_path)
    for column in ("feature", "pearson_r"):
        if column not in table.columns:
            raise ValueError(f"{table_path} has no {column!r} column (columns: {list(table.columns)[:8]})")
    table["pearson_r"] = pd.to_numeric(table["pearson_r"], errors="coerce")
    table = table.sort_values("pearson_r", ascending=False, na_position="last").reset_index(drop=True)
    metrics: dict[str, Any] = {}
    metrics_path = root / METRICS_FILE
    if metrics_path.is_file():
        try:
            loaded = json.loads(metrics_path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{metrics_path} is not valid JSON ({err})") from err
        metrics = loaded if isinstance(loaded, dict) else {}
    pairs = root / PAIRS_FILE
    return EvaluationFiles(root, table, metrics, pairs if pairs.is_file() else None)


def feature_pairs(pairs_path: str | Path, feature: str) -> pd.DataFrame:
    """Rows of one feature from the long pairs table (read with a parquet filter, not whole)."""
    frame = pd.read_parquet(pairs_path, filters=[("feature", "==", feature)])
    missing = {"real", "generated"} - set(frame.columns)
    if missing:
        raise ValueError(f"{pairs_path} lacks column(s) {sorted(missing)}")
    frame["feature"] = frame["feature"].astype(str)
    return frame.reset_index(drop=True)


def defined(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with a finite r."""
    return table[np.isfinite(table["pearson_r"].to_numpy(float))]


HEADLINE_LABELS = {
    "fid_inception": "FID (Inception)",
    "kid_inception": "KID (Inception)",
    "frechet_cellprofiler": "Fréchet (CP features)",
    "kid_cellprofiler": "KID (CP features)",
    "frechet_encoder": "Fréchet (encoder)",
    "moa_fidelity_balanced_ratio": "MoA fidelity (balanced)",
    "moa_accuracy_generated": "MoA accuracy, generated",
    "moa_accuracy_real": "MoA accuracy, real",
}
"""Readable names for metrics.json's headline keys (fraction_r_above_0.5 is shown by the page itself)."""


def undefined_reasons(table: pd.DataFrame) -> pd.DataFrame:
    """Features without an r and why, in plain words: (feature, reason).

    A Pearson r needs the feature to vary over the cells on both sides: a feature that is
    constant on the real or the generated images (e.g. the Euler number of a nucleus
    without holes, or a Manders overlap that is 1 in every cell) has none. Uses the
    table's real_sd / generated_sd / n_pairs columns when present.
    """
    missing = table[~np.isfinite(pd.to_numeric(table["pearson_r"], errors="coerce").to_numpy(float))]
    reasons = []
    for _, row in missing.iterrows():
        real_sd, gen_sd = row.get("real_sd"), row.get("generated_sd")
        flat_real = real_sd is not None and np.isfinite(real_sd) and float(real_sd) == 0.0
        flat_gen = gen_sd is not None and np.isfinite(gen_sd) and float(gen_sd) == 0.0
        if flat_real and flat_gen:
            reason = "the same value in every real and every generated cell"
        elif flat_gen:
            reason = "the same value in every generated cell"
        elif flat_real:
            reason = "the same value in every real cell"
        elif "n_pairs" in row and np.isfinite(row["n_pairs"]) and int(row["n_pairs"]) < 3:
            reason = f"measurable on only {int(row['n_pairs'])} cell(s) in both sets"
        else:
            reason = "no variation or too few measurable cells"
        reasons.append(reason)
    return pd.DataFrame({"feature": list(missing["feature"]), "reason": reasons})


HEADLINE_HELP = {
    "fid_inception": "Fréchet Inception distance between the real and generated image sets, seen through an "
                     "image network (Inception-v3). 0 = indistinguishable; lower is better.",
    "kid_inception": "Kernel Inception distance: like FID but unbiased for small sets. 0 = indistinguishable.",
    "frechet_cellprofiler": "Fréchet distance between real and generated cells in CellProfiler-feature space "
                            "(each feature standardised). 0 = same feature distribution; lower is better.",
    "kid_cellprofiler": "Kernel distance in CellProfiler-feature space. 0 = same feature distribution.",
    "frechet_encoder": "Fréchet distance in a small image encoder's embedding trained on this dataset.",
    "moa_fidelity_balanced_ratio": "Balanced MoA accuracy on generated cells divided by that on the real cells "
                                   "(the same classifier, trained on real cells' features); 1 = the generated "
                                   "cells keep every MoA as well as the real ones. Balanced, so that the "
                                   "majority class (usually DMSO) cannot carry it.",
    "moa_accuracy_generated": "Accuracy of an MoA classifier (trained on real cells' features) on generated cells.",
    "moa_accuracy_real": "The same classifier's accuracy on real held-out cells: the ceiling for the line above.",
}
"""One plain sentence per headline number, shown as the metric's help (what good looks like)."""

PERCENT_HEADLINES = frozenset({"moa_accuracy_generated", "moa_accuracy_real"})
"""Headline numbers that are fractions of cells, shown as percentages."""


def format_headline(key: str, value: float) -> str:
    """A headline number as the page shows it: accuracies in percent, ratios to two decimals, distances to 3 digits."""
    if key in PERCENT_HEADLINES:
        return f"{100 * value:.1f}%"
    if key.startswith("moa_fidelity"):
        return f"{value:.2f}"
    return f"{value:.3g}"


IMAGE_QUALITY_ROWS: dict[str, tuple[str, str]] = {  # metrics.json key → (label, how to read it)
    "edge_frame": ("Edge frame", "Absolute Laplacian on the crop's edge over the same 3–9 px inside. Real crops "
                   "sit near 1; far above 1 is a frame the generator draws."),
    "streak": ("Streak index", "Median over crops of |log(E_x / E_y)|, E the squared difference between "
               "neighbouring pixels along x and y. Near the real value: no straight row or column streaks."),
    "puncta_per_crop": ("Actin puncta per crop", "Small bright spots in the F-actin channel (top-hat above 80 "
                        "grey levels, 2–12 px). Latrunculin B breaks F-actin into such spots."),
}


def image_quality_tables(metrics: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
    """(statistic / real / generated / how to read it, puncta per class or None) from metrics.json's
    `image_quality` section; None for evaluations made before it existed."""
    section = metrics.get("image_quality")
    if not isinstance(section, dict) or not section.get("available"):
        return None
    real, generated = section.get("real", {}), section.get("generated", {})
    rows = [{"statistic": label, "real": real.get(key), "generated": generated.get(key), "how to read it": text}
            for key, (label, text) in IMAGE_QUALITY_ROWS.items()]
    stats = pd.DataFrame(rows)
    stats[["real", "generated"]] = stats[["real", "generated"]].apply(pd.to_numeric, errors="coerce")
    by_class = section.get("puncta_by_class")
    puncta = pd.DataFrame(by_class, columns=["class", "n", "real", "generated"]) if by_class else None
    return stats, puncta

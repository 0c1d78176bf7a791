"""Scoring a model on a fresh simulated screen: the figures the sim model's ship rules were judged on.

Why a module of its own: every simulated-model arm since 2026-11-28 was chosen and judged on cells of screens the
model never saw (`cp2image simulate OUT --seed N`), cut into fixed subsets so that a choice ("selection") and a
verdict ("report") never read the same cells. `cp2image evaluate` answers a different question (the cells of record,
GroupKFold classifiers, circular r on angles); this reproduces the rules' numbers exactly:

- subsets: "report" = 1,152 cells drawn with `default_rng(0)`; "selection" = 1,152 of the others with
  `default_rng(1)`; "rest" = the remainder;
- MoA fidelity: one classifier (`moa_fidelity`) trained on the bundled screen's training split, real measured
  profiles; the bootstrap interval resamples plate/well groups;
- features preserved: plain Pearson r per feature (angles included, unlike `cp2image evaluate`), real profile vs
  the generated image's measured profile, over features with > 10 finite pairs and spread on both sides;
- frame: mean |Laplacian| on the outermost pixel ring over the mean in the band 3–9 px inside
  (the rules' "frame"; `image_quality.edge_frame_ratio` is the evaluation's later definition).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cp2image.evaluation.correlation import pearson_per_column
from cp2image.evaluation.image_quality import abs_laplacian
from cp2image.evaluation.moa_fidelity import moa_fidelity

Subset = Literal["report", "selection", "rest"]
SUBSET_SIZE = 1152


def verdict_subsets(n_cells: int, size: int = SUBSET_SIZE) -> dict[str, np.ndarray]:
    """Sorted row indices of the three disjoint subsets of a screen with `n_cells` cells."""
    if n_cells < 2 * size:
        raise ValueError(f"a screen of {n_cells} cells cannot hold two subsets of {size}; simulate a larger one")
    report = np.sort(np.random.default_rng(0).choice(n_cells, size, replace=False))
    rest = np.setdiff1d(np.arange(n_cells), report)
    selection = np.sort(np.random.default_rng(1).choice(rest, size, replace=False))
    return {"report": report, "selection": selection, "rest": np.setdiff1d(rest, selection)}


def pearson_per_feature(real: pd.DataFrame, generated: pd.DataFrame) -> np.ndarray:
    """Pearson r of each column of `real` against the same column of `generated`, over columns with > 10 finite
    pairs and spread on both sides (`correlation.pearson_per_column`; angles not treated as circular)."""
    r, _ = pearson_per_column(real.apply(pd.to_numeric, errors="coerce").to_numpy(float),
                              generated[list(real.columns)].apply(pd.to_numeric, errors="coerce").to_numpy(float),
                              min_pairs=11)
    return r[np.isfinite(r)]


def laplacian_frame_ratio(images: np.ndarray) -> float:
    """Mean |4-neighbour Laplacian| on the outermost ring of the interior over the band 3–9 px in (N, C, H, W)."""
    x = np.asarray(images, dtype=float)
    if x.ndim != 4 or x.shape[2] < 16 or x.shape[3] < 16:
        raise ValueError(f"expected (N, C, H, W) crops of at least 16×16 pixels, got shape {x.shape}")
    lap = abs_laplacian(x)
    edge = np.concatenate([lap[:, :, 0, :].ravel(), lap[:, :, -1, :].ravel(),
                           lap[:, :, :, 0].ravel(), lap[:, :, :, -1].ravel()]).mean()
    return float(edge / lap[:, :, 3:10, 3:-3].mean())


@dataclass(frozen=True)
class ScreenScore:
    """One model on one subset of one screen."""

    subset: str
    n_cells: int
    balanced_ratio: float
    balanced_ratio_interval: tuple[float, float]
    ratio: float
    real_balanced_accuracy: float
    generated_balanced_accuracy: float
    features_r_above_half: float
    median_r: float
    n_features_scored: int
    frame: float

    def as_dict(self) -> dict:
        return asdict(self)


def score_screen(real: pd.DataFrame, generated: pd.DataFrame, images: np.ndarray, cells: pd.DataFrame,
                 train: pd.DataFrame, *, feature_names: list[str], subset: str) -> ScreenScore:
    """Score generated profiles/images of `cells` (one row each, same order) against their real profiles.

    `train`: the real training profiles (with `Metadata_MoA`) the MoA classifier learns from; `cells` must carry
    `Metadata_MoA`, `Metadata_Plate` and `Metadata_Well`.
    """
    if not len(real) == len(generated) == len(images) == len(cells):
        raise ValueError(f"{len(real)} real profiles, {len(generated)} generated, {len(images)} images and "
                         f"{len(cells)} cells: one of each per cell")
    missing = [c for c in ("Metadata_MoA", "Metadata_Plate", "Metadata_Well") if c not in cells.columns]
    if missing or "Metadata_MoA" not in train.columns:
        raise ValueError(f"missing metadata columns: {missing or ['Metadata_MoA (training cells)']}")
    fidelity = moa_fidelity(train, train.Metadata_MoA, real[feature_names], generated[feature_names],
                            cells.Metadata_MoA,
                            test_groups=cells.Metadata_Plate.astype(str) + "/" + cells.Metadata_Well.astype(str))
    rs = pearson_per_feature(real[feature_names], generated[feature_names])
    return ScreenScore(
        subset=subset, n_cells=len(cells), balanced_ratio=float(fidelity.balanced_ratio),
        balanced_ratio_interval=tuple(float(v) for v in fidelity.balanced_ratio_interval),
        ratio=float(fidelity.ratio), real_balanced_accuracy=float(fidelity.real_balanced_accuracy),
        generated_balanced_accuracy=float(fidelity.generated_balanced_accuracy),
        features_r_above_half=float((rs > 0.5).mean()) if len(rs) else float("nan"),
        median_r=float(np.median(rs)) if len(rs) else float("nan"), n_features_scored=int(len(rs)),
        frame=laplacian_frame_ratio(images),
    )

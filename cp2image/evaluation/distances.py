"""Fréchet distance and KID between real and generated cells, in any feature space."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cp2image.data.columns import feature_columns
from cp2image.evaluation.config import EvaluationConfig
from cp2image.evaluation.frechet import frechet_distance_from_features
from cp2image.evaluation.kid import kid
from cp2image.evaluation.metrics import CellProfilerSpace, Distances

logger = logging.getLogger(__name__)


def distances_in_space(real: np.ndarray, generated: np.ndarray, *, config: EvaluationConfig) -> Distances:
    """Fréchet distance and KID between two feature sets (rows = cells)."""
    result = kid(real, generated, n_subsets=config.kid_subsets, subset_size=config.kid_subset_size, seed=config.seed)
    error = None
    try:
        frechet: float | None = frechet_distance_from_features(real, generated)
    except ValueError as err:  # e.g. a truly complex (Σ1Σ2)^½ from rank-deficient covariances
        frechet, error = None, str(err)
        logger.warning("Fréchet distance not computed: %s", err)
    return Distances(frechet=frechet, kid=result.mean, kid_std=result.std, kid_subset_size=result.subset_size,
                     n_real=int(len(real)), n_generated=int(len(generated)), dim=int(real.shape[1]),
                     frechet_error=error)


def cellprofiler_space(real: pd.DataFrame, generated: pd.DataFrame, *, config: EvaluationConfig,
                       min_finite_fraction: float = 0.95) -> CellProfilerSpace:
    """Distances in CellProfiler feature space, standardised with the real cells' mean and sd.

    Features: in both tables, finite in ≥95 % of real cells and not constant there.
    Cells with any non-finite selected feature (e.g. failed segmentation) are dropped
    and counted, so a model whose images cannot be segmented is visible as such.
    """
    names = [c for c in feature_columns(real) if c in generated.columns]
    r = real[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    g = generated[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    finite_frac = np.isfinite(r).mean(axis=0)
    with np.errstate(invalid="ignore"):
        sd = np.nanstd(np.where(np.isfinite(r), r, np.nan), axis=0, ddof=1) if len(r) > 1 else np.zeros(len(names))
    keep = (finite_frac >= min_finite_fraction) & np.isfinite(sd) & (sd > 0)
    if not keep.any():
        raise ValueError("no CellProfiler feature is finite and varying in the real cells")
    r, g, sd = r[:, keep], g[:, keep], sd[keep]
    r_ok = np.isfinite(r).all(axis=1)
    g_ok = np.isfinite(g).all(axis=1)
    out = CellProfilerSpace(n_features=int(keep.sum()), real_dropped=int((~r_ok).sum()),
                            generated_dropped=int((~g_ok).sum()), generated_dropped_fraction=float((~g_ok).mean()),
                            distances=None)
    if g_ok.sum() < 2:
        out.reason = "fewer than 2 generated crops could be measured"
        return out
    mean = r[r_ok].mean(axis=0)
    out.distances = distances_in_space((r[r_ok] - mean) / sd, (g[g_ok] - mean) / sd, config=config)
    if min(r_ok.sum(), g_ok.sum()) <= out.n_features:  # Σ of n ≤ d samples is singular
        out.warning = (
            f"covariances are rank-deficient ({int(min(r_ok.sum(), g_ok.sum()))} cells ≤ {out.n_features} "
            "features): the Fréchet distance is unstable; evaluate more cells"
        )
        logger.warning(out.warning)
    return out

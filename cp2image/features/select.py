"""Feature selection as in image-based profiling: drop uninformative and redundant features.

Three filters, applied in this order (each feature gets the first reason that applies):

1. ``nan``: more than ``max_nan_fraction`` of its values are NaN/inf;
2. ``constant``: at most one distinct finite value;
3. ``correlated``: |Pearson r| > ``corr_threshold`` with a feature already kept.
   Features are visited from the least to the most redundant (lowest mean |r|
   with all others first; ties keep the input order), and a feature is kept only
   if it is not near-duplicate with any kept one — so of a correlated pair the
   one that duplicates more of the profile goes.

`select_features` returns the kept names in input order; `selection_report`
says why each dropped one went.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..data.columns import feature_columns

log = logging.getLogger(__name__)


def selection_report(
    frame: pd.DataFrame,
    *,
    features: list[str] | None = None,
    max_nan_fraction: float = 0.05,
    corr_threshold: float = 0.95,
) -> pd.DataFrame:
    """One row per candidate feature: ``feature``, ``kept`` (bool), ``reason`` ("" when kept)."""
    if not 0.0 <= max_nan_fraction <= 1.0:
        raise ValueError(f"max_nan_fraction must be in [0, 1], got {max_nan_fraction}")
    if not 0.0 < corr_threshold <= 1.0:
        raise ValueError(f"corr_threshold must be in (0, 1], got {corr_threshold}")
    names = list(features) if features is not None else feature_columns(frame)
    missing = [f for f in names if f not in frame.columns]
    if missing:
        raise ValueError(f"feature column(s) not in the frame: {missing[:10]}")
    if not names:
        raise ValueError("no feature columns to select from (expected Cells_/Nuclei_/Cytoplasm_ columns)")
    values = frame[names].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    reason = np.array([""] * len(names), dtype=object)
    nan_frac = 1.0 - finite.mean(axis=0) if len(values) else np.ones(len(names))
    reason[nan_frac > max_nan_fraction] = "nan"
    for k in range(len(names)):
        if reason[k]:
            continue
        col = values[finite[:, k], k]
        if col.size == 0 or np.all(col == col[0]):
            reason[k] = "constant"
    alive = np.flatnonzero(reason == "")
    if alive.size > 1:
        sub = values[:, alive]
        # pairwise-complete correlation via mean imputation of the few NaNs left (≤ max_nan_fraction)
        col_mean = np.nanmean(np.where(np.isfinite(sub), sub, np.nan), axis=0)
        sub = np.where(np.isfinite(sub), sub, col_mean)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.abs(np.corrcoef(sub, rowvar=False))
        r = np.nan_to_num(r, nan=0.0)
        np.fill_diagonal(r, 0.0)
        order = np.argsort(r.mean(axis=0), kind="stable")
        kept: list[int] = []
        for i in order:
            if kept and r[i, kept].max() > corr_threshold:
                reason[alive[i]] = "correlated"
            else:
                kept.append(i)
    report = pd.DataFrame({"feature": names, "kept": reason == "", "reason": reason.astype(str)})
    counts = report["reason"].value_counts().to_dict()
    log.info("feature selection kept %d of %d (dropped: %s)", int(report["kept"].sum()), len(names),
             {k: v for k, v in counts.items() if k})
    return report


def select_features(
    frame: pd.DataFrame,
    *,
    features: list[str] | None = None,
    max_nan_fraction: float = 0.05,
    corr_threshold: float = 0.95,
) -> list[str]:
    """Names of the features to keep, in input order (see module docstring for the rules)."""
    report = selection_report(
        frame, features=features, max_nan_fraction=max_nan_fraction, corr_threshold=corr_threshold
    )
    return report.loc[report["kept"], "feature"].tolist()

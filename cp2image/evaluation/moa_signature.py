"""MoA signatures: does a generated MoA differ from generated DMSO the way the real MoA differs from real DMSO?

The MoA classifier (`moa_fidelity`) gives one number per MoA. A biologist also wants
to know *what* survives: does a generated microtubule stabiliser still have more
tubulin texture than a generated DMSO cell, does a generated Eg5 inhibitor still
round up? For every MoA this module compares two shift vectors over all features:

    real shift      = mean(real MoA cells)      − mean(real control cells)
    generated shift = mean(generated MoA cells) − mean(generated control cells)

both in units of the real control cells' standard deviation. Subtracting each
side's own control cancels what the generator does to every cell alike (blur,
a global intensity bias), leaving the treatment effect. Reported per MoA: the
cosine between the two shifts (1: same direction), the fraction of the MoA's
top-k features (largest |real shift|) whose generated shift has the same sign and
at least half the size ("kept"), and those features with both shifts.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cp2image.data.columns import feature_columns

SIGNATURE_COLUMNS = ["moa", "n", "signature_cosine", "top_kept", "top_features"]


def _values(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    values = frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isfinite(values), values, np.nan)


def moa_signatures(
    real: pd.DataFrame,
    generated: pd.DataFrame,
    moa: pd.Series | np.ndarray,
    *,
    control: str = "DMSO",
    top: int = 5,
    min_cells: int = 3,
    keep_fraction: float = 0.5,
) -> pd.DataFrame:
    """One row per MoA with ≥ `min_cells` held-out cells (see the module docstring).

    `real` and `generated` are profiles of the same cells, row for row; `moa` their labels.
    `top_features` is "feature: real → generated" (SD units), joined by "; ".
    """
    labels = np.asarray(moa).astype(str)
    if not (len(real) == len(generated) == len(labels)):
        raise ValueError(f"real ({len(real)}), generated ({len(generated)}) and moa ({len(labels)}) "
                         "must have one row per cell")
    if top < 1:
        raise ValueError(f"top must be ≥ 1, got {top}")
    is_control = labels == control
    if is_control.sum() < min_cells:
        raise ValueError(f"need ≥ {min_cells} {control!r} cells as the baseline, got {int(is_control.sum())}")
    names = [c for c in feature_columns(real) if c in generated.columns]
    r, g = _values(real, names), _values(generated, names)
    with np.errstate(invalid="ignore"):
        sd = np.nanstd(r[is_control], axis=0, ddof=1)
    usable = np.isfinite(sd) & (sd > 0)
    names = [n for n, u in zip(names, usable) if u]
    r, g, sd = r[:, usable], g[:, usable], sd[usable]
    base_r = np.nanmean(r[is_control], axis=0)
    base_g = np.nanmean(g[is_control], axis=0)
    rows = []
    for name in sorted(set(labels) - {control}):
        mask = labels == name
        if mask.sum() < min_cells:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a feature NaN in every cell of this MoA
            shift_r = (np.nanmean(r[mask], axis=0) - base_r) / sd
            shift_g = (np.nanmean(g[mask], axis=0) - base_g) / sd
        ok = np.isfinite(shift_r) & np.isfinite(shift_g)
        a, b = shift_r[ok], shift_g[ok]
        denominator = np.linalg.norm(a) * np.linalg.norm(b)
        cosine = float(a @ b / denominator) if denominator > 0 else float("nan")
        ranked = np.flatnonzero(ok)[np.argsort(-np.abs(shift_r[ok]), kind="stable")][:top]
        kept = [np.sign(shift_g[i]) == np.sign(shift_r[i]) and abs(shift_g[i]) >= keep_fraction * abs(shift_r[i])
                for i in ranked]
        listed = "; ".join(f"{names[i]}: {shift_r[i]:+.2f} → {shift_g[i]:+.2f}" for i in ranked)
        rows.append({"moa": name, "n": int(mask.sum()), "signature_cosine": cosine,
                     "top_kept": float(np.mean(kept)) if kept else float("nan"), "top_features": listed})
    return pd.DataFrame(rows, columns=SIGNATURE_COLUMNS)


__all__ = ["SIGNATURE_COLUMNS", "moa_signatures"]

"""Correlation of angles on their period, for features such as AreaShape orientation.

Pearson r on an axis angle in [−90°, 90°) counts a nucleus at +89° and one at −89°
as far apart, when they are 2° apart. The circular correlation (Jammalamadaka &
SenGupta) compares the phases 2πθ/P instead, and reads like Pearson r: 1 for
agreement, 0 for none.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cp2image.analysis.domain import circular_period


def circular_r(a: np.ndarray, b: np.ndarray, period: float, *, min_pairs: int = 3) -> float:
    """Circular correlation of two angle samples on `period`, over pairs finite in both; NaN if undefined."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < min_pairs:
        return float("nan")
    pa = a[ok] * 2 * np.pi / period
    pb = b[ok] * 2 * np.pi / period
    sa = np.sin(pa - np.arctan2(np.sin(pa).mean(), np.cos(pa).mean()))
    sb = np.sin(pb - np.arctan2(np.sin(pb).mean(), np.cos(pb).mean()))
    denom = np.sqrt((sa ** 2).sum() * (sb ** 2).sum())
    return float(np.clip((sa * sb).sum() / denom, -1.0, 1.0)) if denom > 1e-12 else float("nan")


def on_period(table: pd.DataFrame, real: pd.DataFrame, generated: pd.DataFrame, *,
              column: str = "pearson_r") -> pd.DataFrame:
    """A per-feature r table with the angular features' r replaced by their circular r.

    `table` has columns feature and `column`; `real` and `generated` hold the
    measurements of the same cells, row for row.
    """
    out = table.copy()
    for i, name in zip(out.index, out["feature"]):
        period = circular_period(str(name))
        if period is not None and name in real.columns and name in generated.columns:
            out.loc[i, column] = circular_r(real[name].to_numpy(), generated[name].to_numpy(), period)
    return out

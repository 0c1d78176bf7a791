"""Measure a sweep's images back: did the cell change by what was asked?

`measure_result` measures the generated images with `cp2image.features.measure` (or a
given measurer) and fills the **slope** (measured change / requested change: 1 = the
cell changed by what was asked, 0 = ignored) and Spearman ρ of requested vs measured.
ρ alone is not enough: a nucleus that grows by 3 % of what was asked still gives ρ = 1.
Angles are unwrapped along the sweep before comparing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from cp2image.analysis.domain import circular_period
from cp2image.analysis.perturb_result import PerturbationResult
from cp2image.data.columns import FAILED_COLUMN

log = logging.getLogger(__name__)

Measurer = Callable[[np.ndarray], pd.DataFrame]
"""images (N, 3, H, W) uint8 → one row of CellProfiler-named features per image."""


def _default_measurer() -> Measurer:
    from cp2image.features import measure  # late import: measurement is optional for a sweep

    return measure


def measure_result(result: PerturbationResult, *, measurer: Measurer | None = None) -> PerturbationResult:
    """Measure `result.images` and fill measured / segmentation_failed / Spearman ρ in place."""
    measurer = measurer or _default_measurer()
    frame = measurer(result.images)
    result.measurements = frame
    n = len(result.requested)
    failed = (
        frame[FAILED_COLUMN].to_numpy(dtype=bool)
        if FAILED_COLUMN in frame.columns
        else np.zeros(n, dtype=bool)
    )
    if result.feature not in frame.columns:
        result.note = f"{result.feature!r} is not among the measured features, so it cannot be checked on the images"
        log.info(result.note)
        return result
    measured = pd.to_numeric(frame[result.feature], errors="coerce").to_numpy(dtype=np.float64)
    measured = np.where(failed, np.nan, measured)
    result.measured = measured
    result.segmentation_failed = failed
    result.measured_feature = result.feature
    compared = measured
    period = circular_period(result.feature)
    if period is not None:
        compared = unwrap_finite(measured, period)
        result.measured_unwrapped = compared
    rho, p = spearman(result.requested, compared)
    result.spearman_rho, result.spearman_p = rho, p
    result.slope = fitted_slope(result.requested, compared)
    if rho is None:
        result.note = "fewer than 3 finite, non-constant measured values; Spearman ρ undefined"
    return result


def unwrap_finite(values: np.ndarray, period: float) -> np.ndarray:
    """Unwrap angles along the sweep (jumps over period/2 are wraps); NaNs stay NaN."""
    out = np.array(values, dtype=np.float64)
    ok = np.isfinite(out)
    if ok.sum() >= 2:
        out[ok] = np.unwrap(out[ok], period=period)
    return out


def fitted_slope(x: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of y on x over finite pairs; None if fewer than 2 or x constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return None
    xc = x[ok] - x[ok].mean()
    return float(xc @ (y[ok] - y[ok].mean()) / (xc @ xc))


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Spearman ρ and p over pairs where both are finite; (None, None) if undefined."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None, None
    res = stats.spearmanr(x[ok], y[ok])
    return float(res.statistic), float(res.pvalue)

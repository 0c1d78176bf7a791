"""Robust per-feature centre and scale: median and 1.4826·MAD, defined once.

MAD × 1.4826 estimates the standard deviation of a normal distribution, so a robust
z-score reads in SD units while a few outlier cells cannot move it (pycytominer's
"robustize_mad" convention). The plate normaliser and the analyses' feature space
both use these numbers; each chooses its own fallback for a zero scale.
"""
from __future__ import annotations

import warnings

import numpy as np

MAD_TO_SD = 1.4826
"""Scale factor turning a median absolute deviation into a normal-consistent SD."""


def median_mad(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise median and MAD of (N, p) `values` (NaN ignored; NaN where a column is all-NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(values, axis=0)
        mad = np.nanmedian(np.abs(values - med), axis=0)
    return med, mad


def robust_center_scale(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise median and 1.4826·MAD: the robust stand-ins for mean and SD (may be 0 or NaN)."""
    med, mad = median_mad(np.asarray(values, dtype=np.float64))
    return med, MAD_TO_SD * mad

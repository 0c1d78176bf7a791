"""Kernel Inception Distance maths: unbiased MMD² with a cubic polynomial kernel.

Bińkowski et al. (2018): with k(x, y) = (xᵀy / d + 1)³ and two subsets X, Y of m
samples each (drawn without replacement),

    MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i, y_j)
             − 2/m² Σ_{i,j} k(x_i, y_j)

averaged over `n_subsets` random subsets of size m = min(n_x, n_y, subset_size)
(reference defaults: 100 subsets of 1000). The estimator is unbiased, so it can be
slightly negative when the two distributions are equal.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_SUBSETS = 100
DEFAULT_SUBSET_SIZE = 1000


@dataclass(frozen=True)
class KIDResult:
    """Mean and standard deviation of MMD² over subsets, and the subset size used."""

    mean: float
    std: float
    subset_size: int
    n_subsets: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (xᵀy / d + 1)³ for every pair of rows; returns (n_x, n_y)."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between two equal-size samples under the cubic polynomial kernel."""
    m = x.shape[0]
    if y.shape[0] != m:
        raise ValueError(f"subsets must have equal size, got {m} and {y.shape[0]}")
    if m < 2:
        raise ValueError("need at least 2 samples per subset for the unbiased estimator")
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_subsets: int = DEFAULT_SUBSETS,
    subset_size: int = DEFAULT_SUBSET_SIZE,
    seed: int = 0,
) -> KIDResult:
    """KID between two (n, d) feature sets: MMD²_u averaged over random subsets."""
    a = _as_matrix(x, name="x")
    b = _as_matrix(y, name="y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be ≥ 1, got {n_subsets}")
    m = min(a.shape[0], b.shape[0], int(subset_size))
    if m < 2:
        raise ValueError(f"need at least 2 samples in each set, got {a.shape[0]} and {b.shape[0]}")
    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    for i in range(n_subsets):
        xs = a[rng.choice(a.shape[0], m, replace=False)]
        ys = b[rng.choice(b.shape[0], m, replace=False)]
        values[i] = mmd2_unbiased(xs, ys)
    std = float(values.std(ddof=1)) if n_subsets > 1 else 0.0
    return KIDResult(mean=float(values.mean()), std=std, subset_size=m, n_subsets=int(n_subsets))


def _as_matrix(values: np.ndarray, *, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or inf; drop or impute those rows first")
    return out


__all__ = ["KIDResult", "kid", "mmd2_unbiased", "polynomial_kernel"]

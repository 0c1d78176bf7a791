"""Fréchet distance between two Gaussians fitted to feature sets (the maths of FID).

    d² = ||μ1 − μ2||² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)

This is the formula of Heusel et al. (2017) as the reference FID code evaluates it:
the square root of Σ1 Σ2 comes from `scipy.linalg.sqrtm`; if it is not finite (a
singular product), ε·I is added to both covariances and it is recomputed; a
numerically imaginary result is accepted only when the imaginary part of its
diagonal is negligible (|Im| ≤ 1e-3), and its real part is used. Where the
reference code would stop on a larger imaginary part (rank-deficient covariances,
fewer samples than dimensions), this one first retries once with the ε·I offset. Whatever the
features (Inception pool, CellProfiler, a domain encoder), the distance is the same
function; only the Inception one is "FID".
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg

logger = logging.getLogger(__name__)

IMAGINARY_TOLERANCE = 1e-3
"""Largest |imaginary part| on the diagonal of (Σ1 Σ2)^½ accepted as round-off."""


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance of a feature set (rows = samples)."""

    mu: np.ndarray  # (d,)
    sigma: np.ndarray  # (d, d)
    n: int

    @classmethod
    def from_features(cls, features: np.ndarray) -> "GaussianStats":
        """Fit μ and the unbiased covariance (ddof = 1, as `np.cov`) to (n, d) features."""
        x = _as_matrix(features, name="features")
        if x.shape[0] < 2:
            raise ValueError(f"need at least 2 samples to estimate a covariance, got {x.shape[0]}")
        return cls(mu=x.mean(axis=0), sigma=np.atleast_2d(np.cov(x, rowvar=False)), n=int(x.shape[0]))


def _as_matrix(values: np.ndarray, *, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise ValueError(f"{name} contains NaN or inf in {bad} row(s); drop or impute them first")
    return x


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    *,
    eps: float = 1e-6,
) -> float:
    """Fréchet distance d² between N(μ1, Σ1) and N(μ2, Σ2).

    d² = ||μ1 − μ2||² + Tr(Σ1) + Tr(Σ2) − 2 Tr((Σ1 Σ2)^½)

    `eps` is the diagonal offset used only when (Σ1 Σ2)^½ is not finite.
    Raises ValueError on mismatched shapes or a truly complex square root.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"means must be vectors of one length, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"covariances must be ({d}, {d}) to match the means, got {sigma1.shape} and {sigma2.shape}"
        )
    for name, value in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or inf")

    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        logger.warning("(Σ1 Σ2)^½ is singular; adding %g to the covariance diagonals", eps)
        offset = np.eye(d) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean) and _worst_imaginary(covmean) > IMAGINARY_TOLERANCE:
        # where the reference code would stop, retry once with the ε·I offset (rank-deficient Σ)
        logger.warning("(Σ1 Σ2)^½ is complex; retrying with %g added to the covariance diagonals", eps)
        offset = np.eye(d) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        worst = _worst_imaginary(covmean)
        if worst > IMAGINARY_TOLERANCE:
            raise ValueError(
                f"(Σ1 Σ2)^½ has an imaginary diagonal component of {worst:.3g}; the covariances "
                "are not positive semi-definite (too few samples for the dimension?)"
            )
        covmean = covmean.real
    distance = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    return distance


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """scipy's sqrtm, with its singular-matrix warning turned into a log line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        root = linalg.sqrtm(matrix)
    for w in caught:
        logger.info("sqrtm: %s", w.message)
    return root


def _worst_imaginary(matrix: np.ndarray) -> float:
    return float(np.max(np.abs(np.diagonal(matrix).imag)))


def frechet_distance_from_features(x: np.ndarray, y: np.ndarray, *, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two (n, d) feature sets."""
    a = GaussianStats.from_features(x)
    b = GaussianStats.from_features(y)
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"feature sets differ in dimension: {a.mu.shape[0]} vs {b.mu.shape[0]}")
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma, eps=eps)


__all__ = ["GaussianStats", "frechet_distance", "frechet_distance_from_features"]

"""Fréchet distance: closed-form Gaussian cases, scipy sqrtm cross-checks, input errors."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from cp2image.evaluation.frechet import GaussianStats, frechet_distance, frechet_distance_from_features


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_identical_gaussians_are_at_distance_zero() -> None:
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=6), _random_spd(rng, 6)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_one_dimensional_case_is_mean_gap_plus_sd_gap_squared() -> None:
    # d² = (μ1 − μ2)² + (σ1 − σ2)² for scalar Gaussians
    d = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert d == pytest.approx(3.0**2 + (2.0 - 3.0) ** 2)


def test_diagonal_covariances_match_closed_form() -> None:
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.1, 3.0, size=5), rng.uniform(0.1, 3.0, size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_commuting_covariances_match_closed_form_in_their_eigenbasis() -> None:
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    v1, v2 = np.array([1.0, 2.0, 0.5, 4.0]), np.array([3.0, 0.2, 0.5, 1.0])
    s1, s2 = q @ np.diag(v1) @ q.T, q @ np.diag(v2) @ q.T
    expected = np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(np.zeros(4), s1, np.zeros(4), s2) == pytest.approx(expected, rel=1e-8)


def test_general_covariances_agree_with_symmetric_square_root_via_eigh() -> None:
    # Tr((Σ1Σ2)^½) = Tr((Σ1^½ Σ2 Σ1^½)^½): an independent route through eigendecompositions
    rng = np.random.default_rng(3)
    s1, s2 = _random_spd(rng, 8), _random_spd(rng, 8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_trace_term_equals_scipy_sqrtm_of_the_product() -> None:
    rng = np.random.default_rng(4)
    s1, s2 = _random_spd(rng, 10), _random_spd(rng, 10)
    expected = np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(np.zeros(10), s1, np.zeros(10), s2) == pytest.approx(expected, rel=1e-12)


def test_singular_covariances_give_the_closed_form_value() -> None:
    # rank-deficient diagonal covariances: the zero variances contribute nothing
    v1 = np.array([2.0, 0.0, 1.0])
    v2 = np.array([0.5, 0.0, 0.0])
    expected = (np.sqrt(2.0) - np.sqrt(0.5)) ** 2 + 1.0
    d = frechet_distance(np.zeros(3), np.diag(v1), np.zeros(3), np.diag(v2))
    assert d == pytest.approx(expected, abs=1e-5)


def test_covariance_estimated_from_fewer_samples_than_dimensions_is_finite_and_non_negative() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(10, 30)), rng.normal(size=(10, 30)) + 1.0
    d = frechet_distance_from_features(x, y)
    assert np.isfinite(d) and d >= 30 * 1.0 * 0.5


def test_samples_from_two_gaussians_approach_the_population_distance() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(0.0, 1.0, size=(200_000, 2))
    y = rng.normal(1.0, 2.0, size=(200_000, 2))
    # per dimension: (0 − 1)² + (1 − 2)² = 2 → total 4
    assert frechet_distance_from_features(x, y) == pytest.approx(4.0, abs=0.05)


def test_gaussian_stats_use_the_unbiased_covariance() -> None:
    x = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    stats = GaussianStats.from_features(x)
    np.testing.assert_allclose(stats.mu, [2.0, 4.0])
    np.testing.assert_allclose(stats.sigma, np.cov(x.T, ddof=1))
    assert stats.n == 3


def test_mismatched_shapes_are_rejected_with_the_shapes_named() -> None:
    with pytest.raises(ValueError, match=r"covariances must be \(2, 2\)"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="means must be vectors of one length"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_nan_features_are_rejected() -> None:
    x = np.ones((4, 2))
    x[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 row"):
        frechet_distance_from_features(x, np.ones((4, 2)))

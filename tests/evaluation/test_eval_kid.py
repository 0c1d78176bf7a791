"""KID: the unbiased MMD² estimator against brute force and a closed-form population value."""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.evaluation.kid import kid, mmd2_unbiased, polynomial_kernel


def test_polynomial_kernel_is_cubic_in_the_scaled_dot_product() -> None:
    x = np.array([[1.0, 2.0]])
    y = np.array([[3.0, -1.0]])
    # d = 2: (1·3 + 2·(−1)) / 2 + 1 = 1.5 → 1.5³
    assert polynomial_kernel(x, y)[0, 0] == pytest.approx(1.5**3)


def test_mmd2_matches_a_brute_force_double_loop() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 3)) + 0.3
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    m = 7
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_matches_the_population_mmd_of_two_1d_uniforms() -> None:
    # d = 1: k(x, y) = (xy + 1)³ has feature map φ(x) = (1, √3 x, √3 x², x³), so
    # MMD² = 3(E x − E y)² + 3(E x² − E y²)² + (E x³ − E y³)².
    # X ~ U(−1, 1): moments 0, 1/3, 0; Y ~ U(0, 1): moments 1/2, 1/3, 1/4 → MMD² = 3/4 + 1/16
    expected = 0.75 + 0.0625
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 1.0, size=(4000, 1))
    y = rng.uniform(0.0, 1.0, size=(4000, 1))
    result = kid(x, y, n_subsets=20, subset_size=1000, seed=0)
    assert result.mean == pytest.approx(expected, rel=0.1)  # ≈ 3 standard errors of this sample
    assert result.subset_size == 1000 and result.n_subsets == 20


def test_kid_of_one_distribution_with_itself_is_near_zero_and_can_be_negative() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 16))
    y = rng.normal(size=(2000, 16))
    result = kid(x, y, n_subsets=20, subset_size=500, seed=1)
    assert abs(result.mean) < 3 * result.std / np.sqrt(20) + 1e-3
    far = kid(x, y + 1.0, n_subsets=20, subset_size=500, seed=1)
    assert far.mean > 100 * abs(result.mean)


def test_kid_is_reproducible_for_a_seed() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 4)), rng.normal(size=(200, 4))
    assert kid(x, y, n_subsets=5, subset_size=100, seed=7) == kid(x, y, n_subsets=5, subset_size=100, seed=7)


def test_subset_size_shrinks_to_the_smaller_set() -> None:
    rng = np.random.default_rng(4)
    result = kid(rng.normal(size=(50, 2)), rng.normal(size=(30, 2)), n_subsets=3, subset_size=1000)
    assert result.subset_size == 30


def test_bad_inputs_are_rejected_with_a_reason() -> None:
    with pytest.raises(ValueError, match="differ in dimension: 2 vs 3"):
        kid(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        kid(np.zeros((1, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        kid(np.full((5, 2), np.nan), np.zeros((5, 2)))

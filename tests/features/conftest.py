"""Fixtures: seeded synthetic crops for the feature tests."""
from __future__ import annotations

import numpy as np
import pytest
from cp_synthetic import draw_cell, ellipse_mask


@pytest.fixture
def disc_crop() -> tuple[np.ndarray, float]:
    """A disc nucleus of radius 9 inside an elliptical cell; returns (crop, radius)."""
    r = 9.0
    nucleus = ellipse_mask(r, r)
    cell = ellipse_mask(22, 15, 30.0)
    return draw_cell(nucleus, cell), r


@pytest.fixture
def crop_batch() -> np.ndarray:
    """Eight varied, seeded crops (N, 3, 68, 68) uint8."""
    rng = np.random.default_rng(42)
    crops = []
    for i in range(8):
        nucleus = ellipse_mask(rng.uniform(7, 11), rng.uniform(6, 9), rng.uniform(-80, 80))
        cell = ellipse_mask(rng.uniform(18, 26), rng.uniform(12, 16), rng.uniform(-80, 80)) | nucleus
        crops.append(draw_cell(nucleus, cell, seed=i))
    return np.stack(crops)

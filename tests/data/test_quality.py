"""Empty-crop check at ingest (`cp2image.data.quality`)."""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.data.quality import empty_crops, structure_score


def _blob(size: int = 32, sigma: float = 5.0) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - size / 2
    return 255 * np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))


def test_a_cell_like_blob_has_structure_and_noise_has_none():
    rng = np.random.default_rng(0)
    cell = np.stack([_blob()] * 3)[None]
    noise = rng.uniform(0, 255, size=(1, 3, 32, 32))
    assert structure_score(cell)[0] > 0.9
    assert abs(structure_score(noise)[0]) < 0.2
    assert empty_crops(np.concatenate([cell, noise])).tolist() == [False, True]


def test_one_structured_channel_is_enough_and_flat_channels_count_as_empty():
    rng = np.random.default_rng(1)
    mixed = np.stack([_blob(), rng.uniform(0, 255, (32, 32)), np.zeros((32, 32))])[None]
    flat = np.full((1, 3, 32, 32), 7.0)
    assert not empty_crops(mixed)[0]
    assert structure_score(flat)[0] == 0.0 and empty_crops(flat)[0]


def test_crops_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        structure_score(np.zeros((3, 32, 32)))

"""The compiled / sliced morphology gives scipy's values exactly: the edge distance transform,
the 3×3 erosions behind AreaShape, Intensity edges, RadialDistribution, Granularity and
the declumping landscape, and the segmentation's hole filling, on random stacks, on segmented crops and with numba switched off;
and Texture's compiled co-occurrence counting gives the numpy sort's arrays."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from cp2image.features import distance, morphology, segment_batch, texture
from cp2image.features.reconstruction import HAS_NUMBA

CROSS = np.zeros((1, 3, 3), dtype=bool)
CROSS[0] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
SQUARE = np.ones((1, 3, 3), dtype=bool)


def _random_stacks(seed: int, count: int = 60):
    """Stacks of every awkward size (1×1 images, single rows) and density (empty to full)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        shape = (int(rng.integers(1, 4)), int(rng.integers(1, 24)), int(rng.integers(1, 24)))
        yield rng.random(shape) < rng.choice([0.0, 0.3, 0.7, 0.95, 1.0])


def _scipy_edge_distance(mask: np.ndarray) -> np.ndarray:
    n, h, w = mask.shape
    framed = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    return ndi.distance_transform_edt(framed.reshape(n * (h + 2), w + 2)).reshape(n, h + 2, w + 2)[:, 1:-1, 1:-1]


@pytest.fixture(params=[True, False] if HAS_NUMBA else [False], ids=["numba", "numpy"] if HAS_NUMBA else ["numpy"])
def numba_on(request, monkeypatch) -> bool:
    """Run a test with the compiled kernels and again with the fallback numba-less installs take."""
    monkeypatch.setattr(distance, "HAS_NUMBA", request.param)
    monkeypatch.setattr(morphology, "HAS_NUMBA", request.param)
    return request.param


def test_edge_distance_is_scipys_euclidean_distance_bit_for_bit(numba_on, crop_batch):
    seg = segment_batch(crop_batch)
    stacks = [*_random_stacks(0), seg.nucleus, seg.cell, seg.cytoplasm, np.ones((2, 68, 68), bool)]
    for mask in stacks:
        np.testing.assert_array_equal(distance.edge_distance(mask), _scipy_edge_distance(mask))


def test_no_distance_crosses_from_one_crop_to_the_next():
    mask = np.zeros((2, 5, 5), dtype=bool)
    mask[0] = True  # a full crop: its centre is 3 px from the frame, whatever the next crop holds
    assert distance.edge_distance(mask)[0, 2, 2] == 3.0
    assert (distance.edge_distance(mask)[1] == 0).all()


def test_binary_erosions_are_scipys(crop_batch):
    seg = segment_batch(crop_batch)
    for mask in [*_random_stacks(1), seg.nucleus, seg.cell]:
        np.testing.assert_array_equal(morphology.erode_cross(mask), ndi.binary_erosion(mask, structure=CROSS, border_value=0))
        np.testing.assert_array_equal(morphology.erode_square(mask), ndi.binary_erosion(mask, structure=SQUARE, border_value=0))


def test_grey_erosion_is_scipys_reflect_mode(numba_on):
    rng = np.random.default_rng(2)
    for mask in _random_stacks(3):
        x = rng.random(mask.shape) * mask  # ties (zeros) and edges included
        np.testing.assert_array_equal(
            morphology.grey_erode_cross_reflect(x), ndi.grey_erosion(x, footprint=CROSS, mode="reflect")
        )


def test_compiled_cooccurrence_is_the_numpy_sort_of_pair_codes(crop_batch):
    """Texture's sparse co-occurrence: same distinct codes, counts and pairs per object either way."""
    if not HAS_NUMBA:
        pytest.skip("numba not installed: the numpy path is the only one")
    rng = np.random.default_rng(4)
    seg = segment_batch(crop_batch)
    cases = [(crop_batch[:, c], m) for c in range(3) for m in (seg.nucleus, seg.cell, seg.cytoplasm)]
    for mask in _random_stacks(5):  # few grey levels (many equal codes), zeros (ignored), empty objects
        cases.append((rng.integers(0, rng.choice([2, 5, 256]), mask.shape).astype(np.uint8), mask))
    for q, mask in cases:
        for direction in range(4):
            for scale in (1, 3):
                dy, dx = (scale * s for s in texture.DIRECTIONS[direction])
                expected = texture._cooccurrence_numpy(q, mask, dy, dx)
                got = texture._cooccurrence_compiled(np.ascontiguousarray(q), mask, dy, dx)
                for e, g in zip(expected, got):
                    assert e.dtype == g.dtype
                    np.testing.assert_array_equal(g, e)


def test_fill_holes_is_scipys_per_crop_fill(numba_on, crop_batch):
    """Holes (4-connected background off the border) fill inside each crop, never across crops."""
    rng = np.random.default_rng(6)
    stacks = [*_random_stacks(7), segment_batch(crop_batch).cell,
              ndi.gaussian_filter(rng.random((4, 40, 40)), (0, 2, 2)) > 0.5]
    ring = np.zeros((2, 7, 7), dtype=bool)
    ring[0, 1:6, 1:6] = True
    ring[0, 3, 3] = False  # a hole in crop 0; crop 1 empty
    stacks.append(ring)
    for mask in stacks:
        expected = ndi.binary_fill_holes(np.pad(mask, ((1, 1), (0, 0), (0, 0))), structure=morphology._STACK_4)[1:-1]
        np.testing.assert_array_equal(morphology.fill_holes(mask), expected)
    assert morphology.fill_holes(ring)[0, 3, 3] and not morphology.fill_holes(ring)[1].any()

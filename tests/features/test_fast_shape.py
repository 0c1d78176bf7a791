"""The fast AreaShape paths give the library's numbers: convex area as scikit-image's
``area_convex``, Feret diameters and Zernike moments as cp_measure, on the same mosaic;
central moments as cp_measure bit for bit; the Euler number as its definition."""
from __future__ import annotations

import numpy as np
import skimage.measure
from cp_measure.bulk import get_core_measurements
from cp_measure.primitives._moments import spatial_moments_2d

from cp2image.features import segment_batch
from cp2image.features.hull import hull_measures, object_hulls
from cp2image.features.mosaic import build_mosaic
from cp2image.features.shape import central_moments, euler_by_labelling, euler_number, h_first, h_last
from cp2image.features.zernike import zernike_moments

CORE = get_core_measurements(sanitize=False)


def _odd_shapes() -> np.ndarray:
    """Degenerate and awkward objects: a pixel, lines, an L, a ring, a diagonal, random blobs."""
    rng = np.random.default_rng(3)
    shapes = np.zeros((10, 40, 40), dtype=bool)
    shapes[0, 20, 20] = True
    shapes[1, 20, 5:30] = True
    shapes[2, 3:35, 11] = True
    shapes[3, 5:30, 5] = True
    shapes[3, 29, 5:25] = True
    yy, xx = np.mgrid[:40, :40]
    r = np.hypot(yy - 19.5, xx - 19.5)
    shapes[4] = (r < 15) & (r > 9)
    shapes[5][np.arange(5, 35), np.arange(5, 35)] = True
    for k in range(6, 10):  # blobs: thresholded smoothed noise, largest component
        from scipy import ndimage as ndi

        field = ndi.gaussian_filter(rng.normal(size=(40, 40)), 3) > 0.02
        lab, _ = ndi.label(field)
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        shapes[k] = lab == sizes.argmax()
    return shapes


def _masks(crop_batch) -> list[np.ndarray]:
    seg = segment_batch(crop_batch)
    return [seg.nucleus, seg.cell, seg.cytoplasm, _odd_shapes()]


def test_convex_area_and_feret_equal_scikit_image_and_cp_measure(crop_batch):
    for stack in _masks(crop_batch):
        mosaic = build_mosaic(np.zeros((len(stack), 1, *stack.shape[1:])), {"m": stack})
        labels = mosaic.labels["m"]
        got = hull_measures(object_hulls(mosaic, stack))
        expected = skimage.measure.regionprops_table(labels, properties=["area_convex"])["area_convex"]
        np.testing.assert_array_equal(got["ConvexArea"], expected)
        feret = CORE["feret"](labels, None)
        np.testing.assert_allclose(got["MinFeretDiameter"], feret["MinFeretDiameter"], rtol=1e-12)
        np.testing.assert_allclose(got["MaxFeretDiameter"], feret["MaxFeretDiameter"], rtol=1e-12)


def test_zernike_equals_cp_measure_on_the_same_mosaic(crop_batch):
    for stack in _masks(crop_batch):
        mosaic = build_mosaic(np.zeros((len(stack), 1, *stack.shape[1:])), {"m": stack})
        expected = CORE["zernike"](mosaic.labels["m"], None, zernike_numbers=9)
        for hulls in (None, object_hulls(mosaic, stack)):  # the enclosing circle from its own hull or ours
            got = zernike_moments(mosaic, "m", stack, 9, hulls)
            assert set(got) == set(expected)
            for name, values in expected.items():
                np.testing.assert_allclose(got[name], values, rtol=1e-9, atol=1e-12, err_msg=name)


def test_one_pixel_object_has_nan_zernike_like_cp_measure():
    stack = np.zeros((2, 20, 20), dtype=bool)
    stack[0, 10, 10] = True
    stack[1, 5:15, 5:15] = True
    mosaic = build_mosaic(np.zeros((2, 1, 20, 20)), {"m": stack})
    got = zernike_moments(mosaic, "m", stack, 9)
    expected = CORE["zernike"](mosaic.labels["m"], None, zernike_numbers=9)
    for name in expected:
        np.testing.assert_array_equal(np.isnan(got[name]), np.isnan(expected[name]), err_msg=name)
    assert np.isnan(got["Zernike_0_0"][0]) and np.isfinite(got["Zernike_0_0"][1])


def _bounding_boxes(stack: np.ndarray) -> tuple[np.ndarray, ...]:
    rows, cols = stack.any(axis=2), stack.any(axis=1)
    top, left = h_first(rows), h_first(cols)
    return top, left, h_last(rows) - top + 1, h_last(cols) - left + 1


def test_central_moments_are_cp_measures_bit_for_bit(crop_batch):
    """The moments behind the axes, eccentricity and orientation, gathered from the stack, not the mosaic."""
    for stack in _masks(crop_batch):
        mosaic = build_mosaic(np.zeros((len(stack), 1, *stack.shape[1:])), {"m": stack})
        _, expected, _, _ = spatial_moments_2d(mosaic.labels["m"])
        np.testing.assert_array_equal(central_moments(stack, *_bounding_boxes(stack)), expected)


def test_euler_number_from_bit_quads_is_objects_minus_holes(crop_batch):
    rng = np.random.default_rng(5)
    stacks = [*_masks(crop_batch), np.zeros((2, 6, 6), bool), np.ones((2, 1, 1), bool)]
    stacks += [rng.random((3, int(rng.integers(1, 20)), int(rng.integers(1, 20)))) < d for d in (0.3, 0.5, 0.7) * 40]
    ring = np.zeros((1, 9, 9), dtype=bool)
    ring[0, 2:7, 2:7] = True
    ring[0, 4, 4] = False  # one object with one hole: 0
    np.testing.assert_array_equal(euler_number(ring), [0])
    for stack in stacks:
        np.testing.assert_array_equal(euler_number(stack), euler_by_labelling(stack))

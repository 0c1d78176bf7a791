"""16-bit → uint8: per-image max normalisation (original work) and the percentile option."""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.data.intensity import IntensityConfig, apply_limits, batch_to_uint8, channel_limits, to_uint8


def test_max_normalisation_divides_each_channel_by_its_maximum():
    image = np.array([[[0, 1000], [2000, 4000]], [[0, 10], [10, 20]]], dtype=np.uint16)  # (2, 2, 2)
    out = to_uint8(image)
    # 255 * [0, .25, .5, 1] = [0, 63.75, 127.5, 255] → round half up; channel 2: [0, 127.5, 127.5, 255]
    assert out.dtype == np.uint8
    assert out[0].ravel().tolist() == [0, 64, 128, 255]
    assert out[1].ravel().tolist() == [0, 128, 128, 255]


def test_all_zero_channel_stays_zero():
    image = np.zeros((3, 4, 4), dtype=np.uint16)
    image[0, 1, 1] = 7
    out = to_uint8(image)
    assert out[0, 1, 1] == 255 and out[1:].max() == 0


def test_percentile_normalisation_ignores_a_hot_pixel():
    image = np.tile(np.arange(100, dtype=np.uint16), (1, 100, 1))  # (1, 100, 100), values 0..99 per row
    image[0, 0, 0] = 65535
    by_max = to_uint8(image)
    robust = to_uint8(image, IntensityConfig("percentile", 0.0, 99.0))
    assert by_max[0, 5, 99] == 0  # 99 / 65535 * 255 = 0.39: the hot pixel crushed everything
    assert robust[0, 5, 99] == 255  # the 99th percentile is 99
    assert robust[0, 5, 0] == 0


def test_flat_channel_under_percentile_becomes_zero():
    image = np.full((1, 5, 5), 300, dtype=np.uint16)
    assert to_uint8(image, IntensityConfig("percentile")).max() == 0


def test_limits_from_a_field_apply_unchanged_to_its_crops():
    field = np.random.default_rng(1).integers(0, 5000, size=(3, 30, 30), dtype=np.uint16)
    lo, hi = channel_limits(field, IntensityConfig())
    crop = apply_limits(field[:, 5:15, 5:15], lo, hi)
    np.testing.assert_array_equal(crop, to_uint8(field)[:, 5:15, 5:15])


def test_batch_normalises_each_image_on_its_own():
    batch = np.stack([np.full((3, 2, 2), 10, np.uint16), np.full((3, 2, 2), 10, np.uint16)])
    batch[0, :, 0, 0] = 20
    out = batch_to_uint8(batch)
    assert out[0, 0].ravel().tolist() == [255, 128, 128, 128]  # 255 * 10 / 20 = 127.5
    assert out[1].min() == 255


def test_channel_axis_last_is_supported():
    image = np.array([[[0, 10]], [[5, 20]]], dtype=np.uint16)  # (H=2, W=1, C=2): channel 0 = [0, 5]
    out = to_uint8(image, channel_axis=-1)
    assert out[..., 0].ravel().tolist() == [0, 255]
    assert out[..., 1].ravel().tolist() == [128, 255]  # 255 * 10 / 20 = 127.5


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "mean"}, "intensity method"),
    ({"method": "percentile", "low_percentile": 50.0, "high_percentile": 10.0}, "percentiles"),
])
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IntensityConfig(**kwargs)


def test_non_numeric_image_is_rejected():
    with pytest.raises(ValueError, match="dtype"):
        to_uint8(np.zeros((1, 2, 2), dtype=bool))

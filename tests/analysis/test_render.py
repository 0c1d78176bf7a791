"""render: one channel→colour mapping (DNA blue, tubulin red, actin green) everywhere."""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.analysis import render


def one_channel(index: int, value: int = 255) -> np.ndarray:
    img = np.zeros((1, 3, 4, 4), np.uint8)
    img[0, index] = value
    return img


@pytest.mark.parametrize("index, rgb", [(0, (0, 0, 255)), (1, (255, 0, 0)), (2, (0, 255, 0))])
def test_composite_maps_each_channel_to_its_colour(index, rgb):
    out = render.composite(one_channel(index))
    assert out.shape == (1, 4, 4, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0, 0]) == rgb


def test_composite_adds_channels_and_scales_linearly():
    img = np.zeros((1, 3, 2, 2), np.uint8)
    img[0, 0], img[0, 2] = 102, 51  # DNA 0.4, actin 0.2
    assert tuple(render.composite(img)[0, 1, 1]) == (0, 51, 102)


def test_composite_of_a_subset_drops_the_other_channels():
    img = np.full((1, 3, 2, 2), 255, np.uint8)
    assert tuple(render.composite(img, ["Actin"])[0, 0, 0]) == (0, 255, 0)
    assert tuple(render.composite(img, ["DNA", "Tubulin"])[0, 0, 0]) == (255, 0, 255)


def test_single_channel_is_grey_with_raw_values():
    img = np.zeros((1, 3, 2, 2), np.uint8)
    img[0, 1] = 77
    out = render.single_channel(img, "Tubulin")
    assert np.all(out == 77)
    assert tuple(render.single_channel(img, "Tubulin", coloured=True)[0, 0, 0]) == (77, 0, 0)


def test_stretch_shares_one_scale_so_brightness_ratios_survive():
    img = np.zeros((2, 3, 10, 10), np.uint8)
    img[0, 0], img[1, 0] = 100, 50
    out = render.composite(img, stretch=True)
    assert out[0, 0, 0, 2] == 255 and out[1, 0, 0, 2] == 128  # 50/100 of full scale


def test_bad_channel_and_bad_shape_are_rejected():
    with pytest.raises(ValueError, match="unknown channel"):
        render.composite(one_channel(0), ["GFP"])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        render.composite(np.zeros((1, 4, 4, 4), np.uint8))

"""Rendering fields of view: shapes, determinism, touching cells, crops centred on nuclei."""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.data.simulate.cells import draw_cells, expected_cell_radius
from cp2image.data.simulate.render import PlateEffect, RenderConfig, crop_cells, layout_positions, render_field

CONFIG = RenderConfig(field_size=256)


def _field(seed: int = 0, compound: str = "DMSO", conc: float = 0.0, config: RenderConfig = CONFIG,
           plate: PlateEffect = PlateEffect()):
    rng = np.random.default_rng(seed)
    centres = layout_positions(rng, config=config, cell_radius=expected_cell_radius(compound, conc))
    cells = draw_cells(rng, len(centres), compound_name=compound, concentration=conc)
    return render_field(rng, cells, centres, config=config, plate=plate), cells


def test_field_is_uint8_three_channels_with_several_cells():
    field, cells = _field()
    assert field.image.shape == (3, 256, 256) and field.image.dtype == np.uint8
    assert len(field.centres) == len(cells["cell_radius"]) >= 10
    assert (field.cell_area > 0).sum() >= 10


def test_same_seed_same_field_and_different_seed_different_field():
    a, _ = _field(seed=5)
    b, _ = _field(seed=5)
    c, _ = _field(seed=6)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


def test_neighbouring_cells_touch():
    field, _ = _field()
    lab = field.label
    horiz = (lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] >= 0) & (lab[:, :-1] >= 0)
    pairs = {tuple(sorted(p)) for p in zip(lab[:, 1:][horiz], lab[:, :-1][horiz])}
    assert len(pairs) >= 10  # many cell-cell contacts, not isolated blobs


def test_nuclei_are_brighter_in_dna_than_the_cytoplasm():
    field, _ = _field()
    dna = field.image[0].astype(float)
    cx, cy = np.round(field.centres).astype(int).T
    inside = (cx >= 0) & (cy >= 0) & (cx < 256) & (cy < 256)
    at_nuclei = dna[cy[inside], cx[inside]].mean()
    assert at_nuclei > 3 * np.median(dna)


def test_crops_are_centred_on_nuclei_and_inside_the_field():
    field, _ = _field()
    crops, keep = crop_cells(field.image, field.centres, crop_size=68)
    assert crops.shape == (len(keep), 3, 68, 68) and crops.dtype == np.uint8
    assert len(keep) >= 3
    c = field.centres[keep]
    assert (c >= 34 - 0.5).all() and (c <= 256 - 34 + 0.5).all()
    centre = crops[:, 0, 30:38, 30:38].astype(float).mean()
    corners = crops[:, 0, :6, :6].astype(float).mean()
    assert centre > 2 * corners
    # the crop is exactly the field window around the rounded centre
    x, y = np.round(c[0]).astype(int)
    np.testing.assert_array_equal(crops[0], field.image[:, y - 34 : y + 34, x - 34 : x + 34])


def test_plate_gain_scales_the_channel():
    dim, _ = _field(seed=2, plate=PlateEffect(gain=(1.0, 0.5, 1.0)))
    bright, _ = _field(seed=2, plate=PlateEffect(gain=(1.0, 1.5, 1.0)))
    assert bright.image[1].mean() > 2 * dim.image[1].mean()
    assert bright.image[0].mean() == pytest.approx(dim.image[0].mean(), rel=0.01)


def test_exposure_scales_the_stain_signal_of_its_channel_but_not_the_background():
    config = RenderConfig(field_size=256, exposure=(1.0, 1.0, 1.0), read_noise=0.0, shot_noise=0.0)
    short, _ = _field(seed=3, config=config)
    long, _ = _field(seed=3, config=RenderConfig(field_size=256, exposure=(1.0, 1.0, 2.0), read_noise=0.0,
                                                  shot_noise=0.0))
    on_cells, background = short.label >= 0, short.label < 0
    signal = short.image[2][on_cells].astype(float).mean() - short.image[2][background].astype(float).mean()
    signal_long = long.image[2][on_cells].astype(float).mean() - long.image[2][background].astype(float).mean()
    assert signal_long == pytest.approx(2 * signal, rel=0.05)
    np.testing.assert_array_equal(long.image[:2], short.image[:2])


@pytest.mark.parametrize("exposure", [(1.0, 0.0, 1.0), (1.0, -1.0, 1.0), (1.0, 1.0), (1.0, float("nan"), 1.0)])
def test_exposure_must_be_three_positive_gains(exposure):
    with pytest.raises(ValueError, match="exposure"):
        RenderConfig(exposure=exposure)


def test_render_stains_is_the_field_before_the_microscope():
    """The stain densities are what the microscope then blurs, exposes and quantises: same layout, floats."""
    from cp2image.data.simulate.render import render_stains

    rng = np.random.default_rng(4)
    centres = layout_positions(rng, config=CONFIG, cell_radius=expected_cell_radius("DMSO", 0.0))
    cells = draw_cells(rng, len(centres), compound_name="DMSO", concentration=0.0)
    stains, _, territories = render_stains(np.random.default_rng(5), cells, centres, field_size=256)
    field = render_field(np.random.default_rng(5), cells, centres, config=CONFIG)
    assert stains.shape == (3, 256, 256) and stains.dtype == np.float32
    np.testing.assert_array_equal(territories.label, field.label)
    assert (stains[1:, field.label < 0] == 0).all()  # tubulin and actin only inside cells


def test_actin_disruption_makes_puncta_visible():
    """F-actin contrast (local peaks over the median) rises with latrunculin B puncta."""
    def peakiness(compound, conc):
        field, _ = _field(seed=9, compound=compound, conc=conc)
        act = field.image[2].astype(float)
        on_cells = field.label >= 0
        return np.percentile(act[on_cells], 99.5) / np.median(act[on_cells])
    assert peakiness("latrunculin B", 3.0) > 1.3 * peakiness("DMSO", 0.0)


def test_mismatched_arrays_raise():
    rng = np.random.default_rng(0)
    cells = draw_cells(rng, 3, compound_name="DMSO", concentration=0.0)
    with pytest.raises(ValueError, match="2 centres"):
        render_field(rng, cells, np.zeros((2, 2)), config=CONFIG)


def test_ruffle_equals_the_trigonometric_sum():
    from cp2image.data.simulate.render import HARMONICS, _ruffle

    theta = np.linspace(-np.pi, np.pi, 101)
    w = np.linspace(0.1, 0.5, len(HARMONICS))
    phase = np.linspace(0.3, 2.0, len(HARMONICS))
    expected = sum(w[j] * np.cos(k * theta + phase[j]) for j, k in enumerate(HARMONICS))
    np.testing.assert_allclose(_ruffle(np.cos(theta), np.sin(theta), w, phase), expected, atol=1e-12)


def test_texture_lookup_wraps_periodically_also_for_negative_coordinates():
    from cp2image.data.simulate.render import _sample

    tiles = np.arange(2 * 4 * 8, dtype=np.float32).reshape(2, 4, 8)
    a = np.array([0.0, 4.0, -4.0, 5.0])
    b = np.array([1.0, 9.0, 1.0, -7.0])
    got = _sample(tiles, np.array([1, 1, 1, 0]), a, b)
    np.testing.assert_array_equal(got, [tiles[1, 0, 1], tiles[1, 0, 1], tiles[1, 0, 1], tiles[0, 1, 1]])

"""Analytic checks of AreaShape on drawn shapes, and the naming contract of all columns."""
from __future__ import annotations

import re

import numpy as np
import pytest
from cp_synthetic import draw_cell, ellipse_mask

from cp2image.channels import CHANNELS
from cp2image.features import ALL_GROUPS, FAILED_COLUMN, feature_names, measure


@pytest.mark.parametrize("theta", [-60.0, -30.0, 0.0, 20.0, 45.0, 75.0])
def test_orientation_of_a_rotated_ellipse_nucleus(theta):
    nucleus = ellipse_mask(13, 6, theta)
    crop = draw_cell(nucleus, ellipse_mask(27, 22, 0.0) | nucleus)
    got = measure(crop[None]).loc[0, "Nuclei_AreaShape_Orientation"]
    assert got == pytest.approx(theta, abs=2.0)


def test_orientation_of_a_horizontal_ellipse_is_plus_or_minus_90():
    nucleus = ellipse_mask(13, 6, 90.0)
    got = measure(draw_cell(nucleus, ellipse_mask(27, 22) | nucleus)[None]).loc[0, "Nuclei_AreaShape_Orientation"]
    assert abs(got) == pytest.approx(90.0, abs=2.0)


def test_eccentricity_and_axes_follow_the_drawn_ellipses():
    semi_minor = [10.0, 8.0, 6.0, 4.5]  # semi-major 10 → increasingly elongated
    crops = np.stack([draw_cell(ellipse_mask(10, b, 30.0), ellipse_mask(27, 22) | ellipse_mask(10, b, 30.0)) for b in semi_minor])
    f = measure(crops)
    ecc = f["Nuclei_AreaShape_Eccentricity"].to_numpy()
    assert np.all(np.diff(ecc) > 0)
    analytic = np.sqrt(1 - (np.array(semi_minor) / 10.0) ** 2)
    np.testing.assert_allclose(ecc, analytic, atol=0.08)
    # equivalent-ellipse axis lengths are full axes: 2 × semi-axes
    np.testing.assert_allclose(f["Nuclei_AreaShape_MajorAxisLength"], 20.0, rtol=0.06)
    np.testing.assert_allclose(f["Nuclei_AreaShape_MinorAxisLength"], 2 * np.array(semi_minor), rtol=0.1)


def test_cell_and_cytoplasm_areas_match_the_drawn_masks(disc_crop):
    crop, r = disc_crop
    f = measure(crop[None]).loc[0]
    cell_area = (ellipse_mask(22, 15, 30.0) | ellipse_mask(r, r)).sum()
    assert f["Cells_AreaShape_Area"] == pytest.approx(cell_area, rel=0.05)
    assert f["Cytoplasm_AreaShape_Area"] == pytest.approx(f["Cells_AreaShape_Area"] - f["Nuclei_AreaShape_Area"])
    # DNA is bright only in the nucleus: mean DNA intensity ≈ (10 + 200) / 255 there
    assert f["Nuclei_Intensity_MeanIntensity_DNA"] == pytest.approx(210 / 255, abs=0.02)
    assert f["Nuclei_Intensity_IntegratedIntensity_DNA"] == pytest.approx(
        f["Nuclei_Intensity_MeanIntensity_DNA"] * f["Nuclei_AreaShape_Area"]
    )


def test_at_least_400_features_in_every_group():
    names = feature_names()
    assert len(names) >= 400
    assert len(set(names)) == len(names)
    for group in ALL_GROUPS:
        assert any(f"_{group}_" in n for n in names), group


NAME = re.compile(
    r"^(Nuclei|Cells|Cytoplasm)_(AreaShape|Intensity|Texture|Granularity|RadialDistribution|Correlation)_[A-Za-z0-9_]+$"
)


def test_names_follow_the_cellprofiler_convention():
    names = feature_names()
    assert all(NAME.match(n) for n in names), [n for n in names if not NAME.match(n)][:5]
    for n in names:
        group = n.split("_")[1]
        if group in ("Intensity", "Texture", "Granularity", "RadialDistribution"):
            assert any(f"_{ch}" in n for ch in CHANNELS), n
    assert "Nuclei_Texture_Contrast_DNA_3_00_256" in names
    assert "Cells_RadialDistribution_FracAtD_Actin_1of4" in names
    assert "Cells_Granularity_1_Tubulin" in names
    assert "Cytoplasm_Correlation_Correlation_DNA_Tubulin" in names
    assert "Cells_Correlation_Manders_Actin_Tubulin" in names
    assert "Nuclei_AreaShape_Zernike_2_0" in names


def test_measurement_is_deterministic(crop_batch):
    a = measure(crop_batch)
    b = measure(crop_batch.copy())
    assert a.equals(b)
    assert a.drop(columns=FAILED_COLUMN).notna().all().all()

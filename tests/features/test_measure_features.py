"""measure(): CellProfiler-named features on synthetic crops with known geometry."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.features import FAILED_COLUMN, feature_names, measure, segment

from cp_synthetic import draw_cell, ellipse_mask

GUARANTEED = [
    "Nuclei_AreaShape_Area", "Nuclei_AreaShape_Orientation", "Nuclei_AreaShape_Eccentricity",
    "Nuclei_AreaShape_Perimeter", "Nuclei_Intensity_MeanIntensity_DNA",
    "Nuclei_Intensity_IntegratedIntensity_DNA", "Cells_AreaShape_Area", "Cytoplasm_AreaShape_Area",
    "Cells_Intensity_MeanIntensity_Actin", "Cells_Intensity_MeanIntensity_Tubulin",
]


def test_output_has_guaranteed_columns_one_row_per_crop(crop_batch):
    frame = measure(crop_batch)
    assert list(frame.index) == list(range(len(crop_batch)))
    missing = [c for c in GUARANTEED if c not in frame.columns]
    assert not missing
    assert frame[FAILED_COLUMN].dtype == bool
    assert not frame[FAILED_COLUMN].any()
    assert list(frame.columns[:-1]) == feature_names()


def test_nucleus_area_of_a_disc_is_pi_r_squared(disc_crop):
    crop, r = disc_crop
    frame = measure(crop[None])
    assert frame.loc[0, "Nuclei_AreaShape_Area"] == pytest.approx(np.pi * r**2, rel=0.06)
    assert frame.loc[0, "Nuclei_AreaShape_Eccentricity"] < 0.3


def test_empty_crop_is_flagged_not_raised(crop_batch):
    images = crop_batch.copy()
    images[3] = 0  # blank crop
    images[5, 0] = 0  # no DNA at all
    frame = measure(images)
    assert frame[FAILED_COLUMN].tolist() == [False, False, False, True, False, True, False, False]
    assert frame.loc[[3, 5], feature_names()].isna().all().all()
    assert frame.loc[[0, 1, 2, 4, 6, 7], "Nuclei_AreaShape_Area"].notna().all()


def test_segmentation_of_one_crop_nests_nucleus_in_cell(disc_crop):
    crop, _ = disc_crop
    seg = segment(crop)
    assert seg.ok
    assert (seg.nucleus <= seg.cell).all()
    assert not (seg.cytoplasm & seg.nucleus).any()
    assert (seg.cytoplasm | seg.nucleus).sum() == seg.cell.sum()


def test_parallel_and_chunked_results_equal_serial(crop_batch):
    from cp2image.features import MeasureConfig

    serial = measure(crop_batch)
    chunked = measure(crop_batch, n_jobs=2, config=MeasureConfig(chunk_size=3))
    # Zernike moments use CellProfiler's minimum enclosing circle, whose
    # floating-point result shifts ~1e-3 with the object's position in the mosaic;
    # every other feature agrees to rounding error.
    zern = [c for c in serial.columns if "_Zernike_" in c]
    pd.testing.assert_frame_equal(serial.drop(columns=zern), chunked.drop(columns=zern), rtol=1e-9)
    pd.testing.assert_frame_equal(serial[zern], chunked[zern], atol=5e-3, rtol=0)


def test_measure_rejects_wrong_dtype_and_shape(crop_batch):
    with pytest.raises(ValueError, match="uint8"):
        measure(crop_batch.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        measure(crop_batch[:, :2])

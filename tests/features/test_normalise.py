"""ProfileNormaliser: robust z-scores to DMSO per plate, checked against hand-computed numbers."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from cp2image.features import ProfileNormaliser

S = 1.4826  # MAD → SD


@pytest.fixture
def frame() -> pd.DataFrame:
    """8 cells on 2 plates: 3 DMSO + 1 drug per plate."""
    return pd.DataFrame(
        {
            "Metadata_Plate": ["P1"] * 4 + ["P2"] * 4,
            "Metadata_Compound": ["DMSO", "DMSO", "DMSO", "taxol"] * 2,
            "Cells_A": [1.0, 2.0, 4.0, 10.0, 10.0, 14.0, 20.0, 30.0],
            "Nuclei_B": [5.0, 5.0, 5.0, 8.0, 1.0, 3.0, 6.0, 0.0],
        }
    )


def test_values_are_robust_z_scores_against_each_plates_dmso(frame):
    out = ProfileNormaliser().fit_transform(frame)
    # Cells_A, P1: DMSO 1,2,4 → median 2, |dev| 1,0,2 → MAD 1
    # Cells_A, P2: DMSO 10,14,20 → median 14, |dev| 4,0,6 → MAD 4
    expected_a = [(1 - 2) / S, 0.0, (4 - 2) / S, (10 - 2) / S,
                  (10 - 14) / (4 * S), 0.0, (20 - 14) / (4 * S), (30 - 14) / (4 * S)]
    # Nuclei_B, P1: DMSO 5,5,5 → MAD 0 → pooled MAD: DMSO 5,5,5,1,3,6 → median 5, |dev| 0,0,0,4,2,1 → 0.5
    # Nuclei_B, P2: DMSO 1,3,6 → median 3, |dev| 2,0,3 → MAD 2
    expected_b = [0.0, 0.0, 0.0, (8 - 5) / (0.5 * S),
                  (1 - 3) / (2 * S), 0.0, (6 - 3) / (2 * S), (0 - 3) / (2 * S)]
    expected = frame.copy()
    expected["Cells_A"] = expected_a
    expected["Nuclei_B"] = expected_b
    pd.testing.assert_frame_equal(out, expected, rtol=1e-12)


def test_metadata_columns_are_left_untouched(frame):
    out = ProfileNormaliser().fit_transform(frame)
    pd.testing.assert_frame_equal(out[["Metadata_Plate", "Metadata_Compound"]], frame[["Metadata_Plate", "Metadata_Compound"]])


def test_round_trip_through_json_gives_identical_output(frame):
    fitted = ProfileNormaliser().fit(frame)
    restored = ProfileNormaliser.from_dict(json.loads(json.dumps(fitted.to_dict())))
    pd.testing.assert_frame_equal(restored.transform(frame), fitted.transform(frame))


def test_unseen_plate_uses_pooled_dmso_statistics(frame, caplog):
    fitted = ProfileNormaliser().fit(frame)
    new = pd.DataFrame({"Metadata_Plate": ["P3"], "Metadata_Compound": ["taxol"], "Cells_A": [12.0], "Nuclei_B": [7.0]})
    with caplog.at_level(logging.WARNING):
        out = fitted.transform(new)
    assert "P3" in caplog.text
    # pooled Cells_A DMSO: 1,2,4,10,14,20 → median 7, |dev| 6,5,3,3,7,13 → MAD 5.5
    assert out.loc[0, "Cells_A"] == pytest.approx((12 - 7) / (5.5 * S))
    assert out.loc[0, "Nuclei_B"] == pytest.approx((7 - 5) / (0.5 * S))


def test_unseen_plate_can_be_an_error(frame):
    fitted = ProfileNormaliser(unseen_plates="error").fit(frame)
    new = frame.assign(Metadata_Plate="P9")
    with pytest.raises(ValueError, match="P9.*not seen"):
        fitted.transform(new)


def test_constant_control_feature_is_only_centred(frame):
    frame = frame.assign(Cells_C=[3.0] * 8)
    out = ProfileNormaliser().fit_transform(frame)
    np.testing.assert_array_equal(out["Cells_C"], np.zeros(8))


def test_errors_name_the_problem(frame):
    with pytest.raises(ValueError, match="no rows with Metadata_Compound == 'DMSO'"):
        ProfileNormaliser().fit(frame.assign(Metadata_Compound="taxol"))
    with pytest.raises(ValueError, match="'Metadata_Plate' is missing"):
        ProfileNormaliser().fit(frame.drop(columns="Metadata_Plate"))
    fitted = ProfileNormaliser().fit(frame)
    with pytest.raises(ValueError, match="missing from the frame.*Nuclei_B"):
        fitted.transform(frame.drop(columns="Nuclei_B"))
    with pytest.raises(ValueError, match="not fitted"):
        ProfileNormaliser().transform(frame)
    with pytest.raises(ValueError, match="not a ProfileNormaliser dict"):
        ProfileNormaliser.from_dict({"format": "something else"})

"""select_features: NaN-heavy, constant and near-duplicate features are dropped."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.features import select_features, selection_report


@pytest.fixture
def frame() -> pd.DataFrame:
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    b = np.array([2.0, -1.0, 0.5, 3.0, -2.0, 1.0, 0.0, 2.5])
    return pd.DataFrame(
        {
            "Metadata_Plate": ["P1"] * 8,
            "Cells_Const": [3.0] * 8,
            "Cells_A": a,
            "Nuclei_Nan": [1.0, np.nan, 2.0, np.nan, 3.0, 4.0, 5.0, 6.0],
            "Cells_Dup": 2 * a + 1,  # r = 1 with Cells_A
            "Cytoplasm_B": b,
        }
    )


def test_constant_nan_and_duplicate_features_are_dropped(frame):
    assert select_features(frame) == ["Cells_A", "Cytoplasm_B"]


def test_report_gives_the_reason_for_each_feature(frame):
    report = selection_report(frame).set_index("feature")
    assert report["reason"].to_dict() == {
        "Cells_Const": "constant", "Cells_A": "", "Nuclei_Nan": "nan", "Cells_Dup": "correlated", "Cytoplasm_B": "",
    }


def test_thresholds_are_respected(frame):
    # 2 of 8 NaN = 25 %: kept when 30 % is allowed
    assert "Nuclei_Nan" in select_features(frame, max_nan_fraction=0.3, corr_threshold=1.0)
    # r(A, B) is small: both kept even at a strict threshold
    r = abs(np.corrcoef(frame["Cells_A"], frame["Cytoplasm_B"])[0, 1])
    assert r < 0.5
    assert {"Cells_A", "Cytoplasm_B"} <= set(select_features(frame, corr_threshold=0.5))


def test_bad_arguments_raise(frame):
    with pytest.raises(ValueError, match="corr_threshold"):
        select_features(frame, corr_threshold=0.0)
    with pytest.raises(ValueError, match="not in the frame.*Cells_X"):
        select_features(frame, features=["Cells_X"])

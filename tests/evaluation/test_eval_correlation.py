"""Per-feature correlation report (Fig. 4a/b): hand-computed r, NaN handling, ranking."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.evaluation.correlation import feature_correlation, pearson_per_column


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    real = pd.DataFrame({
        "Nuclei_AreaShape_Area": [1.0, 2.0, 3.0, 4.0],
        "Cells_Intensity_MeanIntensity_Actin": [1.0, 2.0, 3.0, 4.0],
        "Cytoplasm_AreaShape_Area": [1.0, 2.0, 3.0, 4.0],
        "Nuclei_Intensity_MeanIntensity_DNA": [5.0, 5.0, 5.0, 5.0],
        "Metadata_Well": ["A", "A", "B", "B"],
    })
    gen = pd.DataFrame({
        "Nuclei_AreaShape_Area": [2.0, 4.0, 6.0, 8.0],  # r = 1
        "Cells_Intensity_MeanIntensity_Actin": [4.0, 3.0, 2.0, 1.0],  # r = −1
        "Cytoplasm_AreaShape_Area": [1.0, 3.0, 2.0, 4.0],  # r = 0.8 (hand-computed below)
        "Nuclei_Intensity_MeanIntensity_DNA": [1.0, 2.0, 3.0, 4.0],  # real is constant → undefined
        "Metadata_Well": ["A", "A", "B", "B"],
    })
    return real, gen


def test_pearson_r_matches_hand_computed_values_and_ranks_best_first() -> None:
    # x = 1..4, y = (1, 3, 2, 4), both mean 2.5: Σdxdy = 2.25 − 0.25 − 0.25 + 2.25 = 4, Σdx² = Σdy² = 5 → r = 0.8
    report = feature_correlation(*_frames())
    table = report.table.set_index("feature")
    assert table.loc["Nuclei_AreaShape_Area", "pearson_r"] == pytest.approx(1.0)
    assert table.loc["Cytoplasm_AreaShape_Area", "pearson_r"] == pytest.approx(0.8)
    assert table.loc["Cells_Intensity_MeanIntensity_Actin", "pearson_r"] == pytest.approx(-1.0)
    assert np.isnan(table.loc["Nuclei_Intensity_MeanIntensity_DNA", "pearson_r"])
    assert list(report.table["feature"]) == [
        "Nuclei_AreaShape_Area", "Cytoplasm_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin",
        "Nuclei_Intensity_MeanIntensity_DNA",
    ]
    assert list(report.table["rank"]) == [1, 2, 3, 4]
    assert table.loc["Nuclei_AreaShape_Area", "compartment"] == "Nuclei"
    assert table.loc["Cells_Intensity_MeanIntensity_Actin", "group"] == "Intensity"


def test_fraction_above_counts_only_defined_features() -> None:
    report = feature_correlation(*_frames())
    assert report.fraction_above(0.5) == pytest.approx(2 / 3)
    assert report.fraction_above(0.9) == pytest.approx(1 / 3)
    assert report.summary()["n_defined"] == 3 and report.summary()["n_features"] == 4


def test_top_and_bottom_list_the_extremes() -> None:
    report = feature_correlation(*_frames())
    assert list(report.top(1)["feature"]) == ["Nuclei_AreaShape_Area"]
    assert list(report.bottom(2)["feature"]) == ["Cells_Intensity_MeanIntensity_Actin", "Cytoplasm_AreaShape_Area"]


def test_rows_with_nan_are_skipped_per_feature() -> None:
    a = np.array([[1.0], [2.0], [3.0], [np.nan], [4.0]])
    b = np.array([[2.0], [4.0], [6.0], [1.0], [np.inf]])
    r, n = pearson_per_column(a, b)
    assert r[0] == pytest.approx(1.0) and n[0] == 3


def test_pairs_table_is_long_with_one_row_per_cell_and_feature() -> None:
    real, gen = _frames()
    pairs = feature_correlation(real, gen).pairs(["Cytoplasm_AreaShape_Area"])
    assert list(pairs.columns) == ["cell", "feature", "real", "generated"]
    np.testing.assert_array_equal(pairs["generated"], [1.0, 3.0, 2.0, 4.0])
    np.testing.assert_array_equal(pairs["cell"], [0, 1, 2, 3])


def test_mismatched_rows_or_features_are_errors() -> None:
    real, gen = _frames()
    with pytest.raises(ValueError, match="real has 4 rows but generated has 3"):
        feature_correlation(real, gen.iloc[:3])
    with pytest.raises(ValueError, match="missing from real or generated"):
        feature_correlation(real, gen, features=["Nuclei_AreaShape_Perimeter"])
    with pytest.raises(ValueError, match="share no CellProfiler feature"):
        feature_correlation(real[["Metadata_Well"]], gen[["Metadata_Well"]])


def _orientation_frames(generated_angles: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    real = pd.DataFrame({"Nuclei_AreaShape_Orientation": [85.0, -60.0, 0.0, 40.0, -20.0, 70.0],
                         "Nuclei_AreaShape_Area": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    gen = pd.DataFrame({"Nuclei_AreaShape_Orientation": generated_angles,
                        "Nuclei_AreaShape_Area": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    return real, gen


def test_orientation_turned_by_ten_degrees_across_the_wrap_agrees_perfectly() -> None:
    # every axis turned by +10°: 85° → 95° is written −85°, 70° → 80° stays; the axes agree up to one rotation
    real, gen = _orientation_frames([-85.0, -50.0, 10.0, 50.0, -10.0, 80.0])
    plain, _ = pearson_per_column(real.to_numpy(), gen.to_numpy())
    assert plain[0] < 0.3  # on the line, the wrapped cell looks 170° off
    table = feature_correlation(real, gen).table.set_index("feature")
    assert table.loc["Nuclei_AreaShape_Orientation", "pearson_r"] == pytest.approx(1.0)
    assert table.loc["Nuclei_AreaShape_Orientation", "method"] == "circular"
    assert table.loc["Nuclei_AreaShape_Area", "method"] == "pearson"


def test_mirrored_orientation_is_minus_one_and_unrelated_orientation_is_not_near_one() -> None:
    real, mirrored = _orientation_frames([-85.0, 60.0, 0.0, -40.0, 20.0, -70.0])  # θ → −θ
    assert feature_correlation(real, mirrored).table.set_index("feature").loc[
        "Nuclei_AreaShape_Orientation", "pearson_r"] == pytest.approx(-1.0)
    _, scrambled = _orientation_frames([0.0, 85.0, -60.0, -20.0, 70.0, 40.0])
    r = feature_correlation(real, scrambled).table.set_index("feature").loc["Nuclei_AreaShape_Orientation", "pearson_r"]
    assert abs(r) < 0.6


def test_orientation_with_too_few_finite_pairs_is_undefined() -> None:
    real, gen = _orientation_frames([-85.0, np.nan, np.nan, np.nan, np.nan, 80.0])
    report = feature_correlation(real, gen)
    assert np.isnan(report.table.set_index("feature").loc["Nuclei_AreaShape_Orientation", "pearson_r"])
    assert report.summary()["n_defined"] == 1

"""trajectory.CompoundTrajectory: PCA of DMSO + a compound's doses, the line, clicks → profiles."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from cp2image.analysis.trajectory import CompoundTrajectory



@pytest.fixture(scope="module")
def traj(cells, features):
    return CompoundTrajectory.fit(cells, features=features)


def test_groups_are_dmso_and_every_latrunculin_dose(traj, cells):
    gm = traj.group_means
    assert list(gm["group"]) == ["DMSO", "latrunculin B 0.1 µM", "latrunculin B 0.3 µM", "latrunculin B 1 µM",
                                 "latrunculin B 3 µM"]
    assert list(gm["n_cells"]) == [60, 25, 25, 25, 25]
    assert traj.concentrations == [0.1, 0.3, 1.0, 3.0]
    assert set(traj.scores["Metadata_Compound"]) == {"DMSO", "latrunculin B"}  # taxol not fitted
    assert len(traj.scores) == 160


def test_group_means_are_the_raw_feature_means(traj, cells, features):
    lat3 = cells[(cells["Metadata_Compound"] == "latrunculin B") & (cells["Metadata_Concentration"] == 3.0)]
    np.testing.assert_allclose(traj.mean_profile(3.0).to_numpy(), lat3[features].mean().to_numpy())


def test_pca_is_sklearn_on_z_scored_features(traj, cells, features):
    fitted = cells.loc[traj.scores.index, features].to_numpy(float)
    z = (fitted - fitted.mean(0)) / fitted.std(0)
    ref = PCA(n_components=2).fit(z)
    np.testing.assert_allclose(np.abs(traj.scores[["PC1", "PC2"]].to_numpy()), np.abs(ref.transform(z)), atol=1e-8)
    np.testing.assert_allclose(traj.explained_variance_ratio, ref.explained_variance_ratio_)


def test_line_runs_from_dmso_mean_to_the_chosen_dose_mean(traj):
    line = traj.line(n_points=5, end_concentration=3.0)
    assert list(line["t"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    feats = traj.features
    np.testing.assert_allclose(line[feats].iloc[0].to_numpy(), traj.mean_profile(0).to_numpy())
    np.testing.assert_allclose(line[feats].iloc[-1].to_numpy(), traj.mean_profile(3.0).to_numpy())
    gm = traj.group_means.set_index("concentration")
    np.testing.assert_allclose(line[["PC1", "PC2"]].iloc[-1].to_numpy(), gm.loc[3.0, ["PC1", "PC2"]].to_numpy(float))
    # affine maps keep it straight: equal steps in t are equal steps in PC space
    steps = np.diff(line[["PC1", "PC2"]].to_numpy(), axis=0)
    np.testing.assert_allclose(steps, np.tile(steps[0], (4, 1)), atol=1e-9)


def test_dose_response_orders_the_doses_along_the_line(traj):
    t = [traj.line_parameter(*traj.group_means.set_index("concentration").loc[c, ["PC1", "PC2"]].astype(float),
                             end_concentration=3.0) for c in [0.0, 0.1, 0.3, 1.0, 3.0]]
    assert t[0] == pytest.approx(0.0) and t[-1] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(t, t[1:]))


def test_residual_method_profile_projects_exactly_onto_the_click(traj):
    for click in [(0.5, -1.0), (3.0, 2.0), (-4.0, 0.0)]:
        profile = traj.profile_at(*click)
        assert profile.attrs["method"] == "residual"
        np.testing.assert_allclose(traj.project(profile.to_frame().T).to_numpy()[0], click, atol=1e-8)


def test_residual_method_at_a_real_cell_returns_that_cell(traj, cells):
    label = traj.scores.index[17]
    profile = traj.profile_at(*traj.scores.loc[label, ["PC1", "PC2"]].astype(float))
    assert profile.attrs["nearest"] == label
    np.testing.assert_allclose(profile.to_numpy(), cells.loc[label, traj.features].to_numpy(float), rtol=1e-9)


def test_line_method_maps_a_line_point_to_its_line_profile(traj):
    line = traj.line(n_points=5)
    point = line.iloc[1]
    profile = traj.profile_at(point["PC1"], point["PC2"], method="line")
    assert profile.attrs["t"] == pytest.approx(0.25)
    np.testing.assert_allclose(profile.to_numpy(), point[traj.features].to_numpy(float))


def test_real_examples_come_from_the_requested_group(traj, cells):
    labels = traj.real_examples(1.0, 4, seed=1)
    assert len(labels) == 4 == len(set(labels))
    assert (cells.loc[labels, "Metadata_Concentration"] == 1.0).all()
    assert (cells.loc[traj.real_examples(0.0, 3), "Metadata_Compound"] == "DMSO").all()
    assert len(traj.real_examples(0.3, 100)) == 25  # fewer cells than asked: all of them
    assert traj.real_examples(1.0, 4, seed=1) == labels


def test_unknown_concentration_lists_those_available(traj):
    with pytest.raises(ValueError, match=r"no 'latrunculin B' cells at 5 µM; available: 0.1 µM, 0.3 µM, 1 µM, 3 µM"):
        traj.line(end_concentration=5.0)
    with pytest.raises(ValueError, match="at 2 µM"):
        traj.real_examples(2.0, 1)


def test_unknown_compound_is_an_error_naming_those_present(cells):
    with pytest.raises(ValueError, match="no cells for compound 'latrunculin A'; compounds present: DMSO"):
        CompoundTrajectory.fit(cells, compound="latrunculin A")


def test_one_group_pca_is_degenerate(cells):
    only_dmso = cells[cells["Metadata_Compound"] == "DMSO"]
    with pytest.raises(ValueError, match="no cells for compound 'latrunculin B'"):
        CompoundTrajectory.fit(only_dmso)
    with pytest.raises(ValueError, match="degenerate"):
        CompoundTrajectory.fit(cells, compound="DMSO")
    no_dmso = cells[cells["Metadata_Compound"] != "DMSO"]
    with pytest.raises(ValueError, match="no cells for the control 'DMSO'"):
        CompoundTrajectory.fit(no_dmso)


def test_identical_cells_make_a_degenerate_pca(cells, features):
    flat = cells.copy()
    flat[features] = 1.0
    with pytest.raises(ValueError, match="identical features: the PCA is degenerate"):
        CompoundTrajectory.fit(flat, features=features)


def test_non_finite_rows_are_dropped_before_fitting(cells, features):
    broken = cells.copy()
    broken.loc[1000, features[0]] = np.inf
    traj = CompoundTrajectory.fit(broken, features=features)
    assert 1000 not in traj.scores.index and len(traj.scores) == 159


def test_default_features_are_the_cellprofiler_columns(cells, features):
    assert CompoundTrajectory.fit(cells).features == features


def test_pc1_points_from_control_towards_the_highest_dose(traj):
    gm = traj.group_means.set_index("concentration")
    assert gm.loc[3.0, "PC1"] > gm.loc[0.0, "PC1"]


def test_bad_clicks_and_methods_are_rejected(traj):
    with pytest.raises(ValueError, match="must be finite"):
        traj.profile_at(float("nan"), 0.0)
    with pytest.raises(ValueError, match="method must be 'residual' or 'line'"):
        traj.profile_at(0.0, 0.0, method="nearest")
    with pytest.raises(ValueError, match="not the control"):
        traj.line(end_concentration=0.0)


def test_line_response_compares_first_to_last_change_in_control_sds():
    from cp2image.analysis.trajectory import line_response

    control = pd.DataFrame({"a": [0.0, 2.0, 4.0], "b": [1.0, 1.0, 1.0], "c": [0.0, 1.0, 2.0]})  # SD a 2, c 1; b constant
    requested = pd.DataFrame({"a": [0.0, 4.0], "b": [1.0, 3.0], "c": [0.0, -0.2]})
    measured = pd.DataFrame({"a": [1.0, 3.0], "b": [1.0, 1.0], "c": [0.0, 0.3]})
    response = line_response(requested, measured, control)
    assert list(response.table.index) == ["a", "c"]  # b is constant in the control: no SD to measure in
    assert response.table.loc["a"].tolist() == pytest.approx([2.0, 1.0])
    assert response.summary() == {"features_asked": 1, "right_way": 1.0, "median_measured_over_asked": 0.5}


# -- geometry on the group means (what the PCA page shows beside a click) -------------------------
def _means(**columns):
    return pd.DataFrame({"concentration": [0.0, 0.3, 3.0], "PC1": [0.0, 1.0, 5.0], "PC2": [0.0, 0.0, 0.0]} | columns)


def test_the_doses_nearest_a_click_come_nearest_first():
    from cp2image.analysis.trajectory import nearest_concentrations

    assert nearest_concentrations(_means(), 0.9, 0.1, k=2) == [0.3, 0.0]
    assert nearest_concentrations(_means(), 4.0, 0.0, k=1) == [3.0]
    with pytest.raises(ValueError, match="no groups"):
        nearest_concentrations(_means().iloc[:0], 0.0, 0.0)
    with pytest.raises(ValueError, match="'PC2'"):
        nearest_concentrations(_means().drop(columns="PC2"), 0.0, 0.0)


def test_a_click_on_a_fitted_group_mean_names_that_dose_first(traj):
    from cp2image.analysis.trajectory import nearest_concentrations

    for _, group in traj.group_means.iterrows():
        assert nearest_concentrations(traj.group_means, group["PC1"], group["PC2"], k=1) == [group["concentration"]]


def test_the_dose_line_angle_is_measured_from_the_pc1_axis():
    from cp2image.analysis.trajectory import line_angle_degrees

    diagonal = _means(PC1=[0.0, 1.0, 2.0], PC2=[0.0, 1.0, 2.0])
    assert line_angle_degrees(diagonal, 3.0) == pytest.approx(45.0)
    assert line_angle_degrees(diagonal.assign(PC2=0.0), 3.0) == pytest.approx(0.0)
    assert line_angle_degrees(diagonal.assign(PC1=0.0), 3.0) == pytest.approx(90.0)
    assert line_angle_degrees(_means(PC1=[0.0, 1.0, -2.0], PC2=[0.0, 1.0, 2.0]), 3.0) == pytest.approx(45.0)  # 0–90°
    with pytest.raises(ValueError, match="lacks the control or the 10 µM group"):
        line_angle_degrees(diagonal, 10.0)

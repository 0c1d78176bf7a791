"""coupling: conditional expectation of the other features, stored beside the model; domain rules."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cp2image.analysis import coupling as cp
from cp2image.analysis import domain
from cp2image.assets import bundled_model_dir
from cp2image.models.testing import tiny_model

NAMES = ["Nuclei_AreaShape_Area", "Nuclei_Intensity_MeanIntensity_DNA", "Cells_Correlation_Correlation_DNA_Actin"]
SIGMA = np.array([[4.0, 2.0, 0.0],
                  [2.0, 9.0, -3.0],
                  [0.0, -3.0, 2.0]])


def hand_coupling(cov: np.ndarray = SIGMA) -> cp.FeatureCoupling:
    return cp.FeatureCoupling(feature_names=list(NAMES), mean=np.zeros(3), covariance=cov, shrinkage=0.0,
                              n_cells=100, lower=np.full(3, -np.inf), upper=np.full(3, np.inf))


def test_conditional_shift_is_the_gaussian_regression_on_the_swept_feature():
    """Σ[:, 1] / Σ[1, 1] · δ with Σ above and δ = 3: (2/9·3, 3, −3/9·3) = (2/3, 3, −1)."""
    shift = cp.conditional_shift(hand_coupling(), "Nuclei_Intensity_MeanIntensity_DNA", 3.0)
    np.testing.assert_allclose(shift, [2 / 3, 3.0, -1.0])
    # Feature 0 is uncorrelated with feature 2: moving it leaves feature 2 where it was.
    np.testing.assert_allclose(cp.conditional_shift(hand_coupling(), "Nuclei_AreaShape_Area", -2.0), [-2.0, -1.0, 0.0])


def test_conditional_shift_matches_gaussian_conditioning_of_the_mean():
    """E[x | x_j = a] − E[x | x_j = b] from μ + Σ_·j Σ_jj⁻¹ (x_j − μ_j), for several deltas at once."""
    mu = np.array([1.0, -2.0, 0.5])
    j, a, b = 2, 1.7, 0.2

    def conditional_mean(value):
        return mu + SIGMA[:, j] / SIGMA[j, j] * (value - mu[j])

    shifts = cp.conditional_shift(hand_coupling(), NAMES[j], np.array([a - b, 0.0]))
    assert shifts.shape == (2, 3)
    np.testing.assert_allclose(shifts[0], conditional_mean(a) - conditional_mean(b))
    np.testing.assert_allclose(shifts[1], 0.0)


def test_fit_recovers_the_covariance_in_the_models_normalised_space():
    """Raw cells drawn from N(m, D Σ D) with the model's own mean m and scale D: the fit sees Σ."""
    mean, scale = np.array([300.0, 0.4, 0.1]), np.array([40.0, 0.05, 0.2])
    rng = np.random.default_rng(0)
    z = rng.multivariate_normal(np.zeros(3), SIGMA, size=20_000)
    cells = pd.DataFrame(mean + z * scale, columns=NAMES)
    cells.loc[5, NAMES[0]] = np.nan  # incomplete rows are left out, not imputed
    model = tiny_model(NAMES, feature_mean=mean, feature_scale=scale)
    fitted = cp.fit_coupling(model, cells)
    assert fitted.n_cells == 19_999
    assert 0.0 <= fitted.shrinkage < 0.01  # 20k cells, 3 features: almost no shrinkage needed
    np.testing.assert_allclose(fitted.covariance, SIGMA, atol=0.2)
    np.testing.assert_allclose(cp.conditional_shift(fitted, NAMES[1], 3.0), [2 / 3, 3.0, -1.0], atol=0.05)
    assert fitted.normalisation_digest == cp.normalisation_digest(model)


def test_fitted_domain_is_physical_bounds_intersected_with_the_margined_range():
    """Range = 0.5th–99.5th percentile (201 evenly spaced cells: exactly the 2nd and 200th), ± 10 % of it."""
    cells = pd.DataFrame({NAMES[0]: np.linspace(100.0, 500.0, 201),  # range 398 → [62.2, 537.8]
                          NAMES[1]: np.linspace(0.05, 0.95, 201),  # upper 1.04 capped at 1, lower −0.04 at 0
                          NAMES[2]: np.linspace(-0.99, 0.99, 201)})  # capped at ±1
    cells.loc[0, NAMES[0]] = 6.0  # one mis-segmented cell does not move the floor
    model = tiny_model(NAMES)
    fitted = cp.fit_coupling(model, cells)
    np.testing.assert_allclose(fitted.lower, [102.0 - 39.6, 0.0, -1.0])
    np.testing.assert_allclose(fitted.upper, [498.0 + 39.6, 1.0, 1.0])


@pytest.mark.parametrize("name, bounds", [
    ("Cells_AreaShape_Area", (0.0, np.inf)),
    ("Nuclei_AreaShape_Solidity", (0.0, 1.0)),
    ("Cells_Intensity_MeanIntensity_Actin", (0.0, 1.0)),
    ("Cells_Intensity_IntegratedIntensity_Actin", (0.0, np.inf)),
    ("Cells_Correlation_Correlation_DNA_Actin", (-1.0, 1.0)),
    ("Nuclei_Texture_InfoMeas1_DNA_3_00_256", (-1.0, 0.0)),
    ("Nuclei_AreaShape_Orientation", (-90.0, 90.0)),
    ("Something_Unknown", (-np.inf, np.inf)),
])
def test_physical_bounds_by_measurement_name(name, bounds):
    assert domain.physical_bounds(name) == bounds


def test_angles_wrap_onto_their_period():
    np.testing.assert_allclose(domain.wrap_angle(np.array([-100.0, -90.0, 0.0, 89.0, 95.0, 270.0]), 180.0),
                               [80.0, -90.0, 0.0, 89.0, -85.0, -90.0])


def test_save_load_round_trip_beside_a_model(tmp_path):
    model = tiny_model(NAMES, feature_mean=[300.0, 0.4, 0.1], feature_scale=[40.0, 0.05, 0.2])
    model.save_pretrained(tmp_path)
    rng = np.random.default_rng(1)
    cells = pd.DataFrame(np.array([300.0, 0.4, 0.1]) + rng.standard_normal((50, 3)) * [40.0, 0.05, 0.2],
                         columns=NAMES)
    fitted = cp.fit_coupling(model, cells, source="unit test")
    path = cp.save_coupling(fitted, tmp_path)
    assert path.name == cp.COUPLING_FILE
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left behind
    loaded = cp.load_coupling(tmp_path)
    assert loaded.feature_names == NAMES and loaded.n_cells == 50 and loaded.source == "unit test"
    assert loaded.shrinkage == fitted.shrinkage and loaded.margin == fitted.margin
    for name in ("mean", "covariance", "lower", "upper"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fitted, name))


def test_a_model_folder_without_coupling_gives_none(tmp_path):
    assert cp.load_coupling(tmp_path) is None


def _saved(tmp_path):
    model = tiny_model(NAMES, feature_mean=[300.0, 0.4, 0.1], feature_scale=[40.0, 0.05, 0.2])
    model.save_pretrained(tmp_path)
    c = hand_coupling()  # carries the model's digest, so only the field a test edits differs
    c.normalisation_digest = cp.normalisation_digest(model)
    cp.save_coupling(c, tmp_path)
    return tmp_path


def test_coupling_for_other_features_is_refused_naming_them(tmp_path):
    folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["feature_names"][2] = "Cells_AreaShape_Area"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(cp.CouplingError, match=r"do not match config.json .*only in the model: \['Cells_AreaShape_Area'\]"):
        cp.load_coupling(folder)


def test_coupling_in_another_feature_order_is_refused(tmp_path):
    folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["feature_names"] = config["feature_names"][::-1]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(cp.CouplingError, match="same features in a different order"):
        cp.load_coupling(folder)


def test_coupling_from_before_a_retraining_is_refused(tmp_path):
    folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["feature_scale"][0] = 41.0
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(cp.CouplingError, match="different feature normalisation .* refit"):
        cp.load_coupling(folder)


def test_truncated_coupling_file_is_named_corrupt(tmp_path):
    folder = _saved(tmp_path)
    path = folder / cp.COUPLING_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(cp.CouplingError, match="truncated or corrupt"):
        cp.load_coupling(folder)


@pytest.mark.parametrize("edit, message", [
    (dict(covariance=np.eye(2)), r"covariance has shape \(2, 2\), expected \(3, 3\)"),
    (dict(covariance=np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]])), "not symmetric"),
    (dict(covariance=np.diag([1.0, 0.0, 1.0])), "non-positive variance"),
    (dict(lower=np.array([1.0, 0.0, 0.0]), upper=np.zeros(3)), "above its upper bound"),
    (dict(shrinkage=1.5), r"outside \[0, 1\]"),
])
def test_inconsistent_couplings_are_rejected(edit, message):
    fields = dict(feature_names=list(NAMES), mean=np.zeros(3), covariance=SIGMA, shrinkage=0.0, n_cells=10,
                  lower=np.full(3, -np.inf), upper=np.full(3, np.inf))
    fields.update(edit)
    with pytest.raises(cp.CouplingError, match=message):
        cp.FeatureCoupling(**fields)


def test_bundled_sim_model_ships_a_coupling_that_matches_it():
    """A committed asset: must be present and consistent (fails, never skips)."""
    folder = bundled_model_dir()
    loaded = cp.load_coupling(folder)
    assert loaded is not None, f"{folder} has no {cp.COUPLING_FILE}; fit it with `cp2image perturb --fit-coupling`"
    assert loaded.n_cells > 1000
    # nucleus area and nucleus perimeter move together in any population of cells
    r = loaded.correlation("Nuclei_AreaShape_Area")
    assert r[loaded.index("Nuclei_AreaShape_Perimeter")] > 0.8
    assert loaded.lower[loaded.index("Cells_AreaShape_Area")] >= 0.0

"""interpolate.interpolate_to_moa: the paper's DMSO → MoA walk, 50 features a step."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cp2image.analysis import interpolate
from cp2image.analysis.space import FeatureSpace


def walk(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    steps = [x.copy()]
    for idx in interpolate.replacement_schedule(x, y, k):
        z = steps[-1].copy()
        z[idx] = y[idx]
        steps.append(z)
    return np.stack(steps)


def test_cosine_never_decreases_and_ends_at_one_over_many_random_pairs():
    """The claim in the chosen space (origin at the start cell) holds for any pair, any step size.

    Proof sketch checked here numerically: z_k − x = (y − x) restricted to the replaced set S_k,
    so cos = ‖(y − x)_{S_k}‖ / ‖y − x‖, which grows with S_k and is 1 when S_k is everything.
    """
    rng = np.random.default_rng(7)
    for trial in range(500):
        p = int(rng.integers(2, 600))
        k = int(rng.integers(1, 80))
        dist = trial % 3
        x = rng.standard_normal(p) if dist == 0 else rng.standard_cauchy(p) if dist == 1 else rng.uniform(-5, 5, p)
        y = x + rng.standard_normal(p) * rng.uniform(0.01, 10)
        same = rng.random(p) < 0.2
        y[same] = x[same]  # features where start and target agree
        z = walk(x, y, k)
        cos = interpolate.cosine_to_target(z, x, y)
        assert len(cos) == math.ceil(p / k) + 1
        assert cos[0] == 0.0
        assert np.all(np.diff(cos) >= -1e-12), (trial, cos)
        assert cos[-1] == pytest.approx(1.0)
        expected = [np.linalg.norm((y - x)[np.isin(np.arange(p), np.flatnonzero(zk != x))]) / np.linalg.norm(y - x)
                    for zk in z]
        np.testing.assert_allclose(cos, expected, atol=1e-9)


def test_plain_cosine_can_fall_which_is_why_it_is_not_the_reported_one():
    x, y = np.array([-1.0, 5.0]), np.array([1.0, 1.0])
    z = walk(x, y, 1)  # replaces the larger difference (feature 1: 4) first
    plain = interpolate.plain_cosine(z, y)
    assert plain[0] == pytest.approx(4 / np.sqrt(26 * 2)) and plain[1] == pytest.approx(0.0)
    assert np.all(np.diff(interpolate.cosine_to_target(z, x, y)) >= 0)


def test_schedule_takes_largest_absolute_differences_first():
    x = np.array([0.0, 0.0, 0.0, 0.0, 0.0])
    y = np.array([1.0, -5.0, 3.0, 0.5, -3.0])
    sched = interpolate.replacement_schedule(x, y, 2)
    assert [list(s) for s in sched] == [[1, 2], [4, 0], [3]]  # tie 3 vs −3 keeps model order


def test_identical_start_and_target_give_cosine_one_throughout():
    x = np.array([1.0, 2.0])
    assert list(interpolate.cosine_to_target(walk(x, x, 1), x, x)) == [1.0, 1.0, 1.0]


def test_number_of_steps_is_ceil_p_over_dims(tiny, cells, features):
    for dims in (50, 40, 121, 7):
        res = interpolate.interpolate_to_moa(tiny, cells, target_moa="Actin disruptors", dims_per_step=dims,
                                             generate=False)
        assert res.n_steps == math.ceil(len(features) / dims)
        assert len(res.profiles) == len(res.cosine) == res.n_steps + 1
        assert [len(r) for r in res.replaced[1:-1]] == [dims] * (res.n_steps - 1)


def test_end_to_end_walk_on_the_tiny_model(tiny, cells, features):
    res = interpolate.interpolate_to_moa(tiny, cells, target_moa="Actin disruptors", real_images=np.zeros(
        (len(cells), 3, 68, 68), np.uint8))
    assert res.n_steps == 3  # p = 121
    assert res.images.shape == (4, 3, 68, 68)
    assert np.all(np.diff(res.cosine) >= 0) and res.cosine[-1] == pytest.approx(1.0)
    src, tgt = cells.loc[res.source_row, features].to_numpy(float), cells.loc[res.target_row, features].to_numpy(float)
    np.testing.assert_array_equal(res.profiles.iloc[0].to_numpy(), src)
    np.testing.assert_array_equal(res.profiles.iloc[-1].to_numpy(), tgt)
    assert cells.loc[res.source_row, "Metadata_Compound"] == "DMSO"
    assert cells.loc[res.target_row, "Metadata_MoA"] == "Actin disruptors"
    assert res.source_image.shape == (3, 68, 68)
    table = res.table()
    assert list(table["n_replaced"]) == [0, 50, 100, 121]
    assert table["replaced_features"].iloc[1].count(";") == 49


def test_start_and_target_are_the_real_cells_nearest_their_group_means(tiny, cells, features):
    res = interpolate.interpolate_to_moa(tiny, cells, target_moa="Microtubule stabilizers", generate=False)
    mean = np.asarray(tiny.config.feature_mean)
    scale = np.asarray(tiny.config.feature_scale)
    for label, mask in ((res.source_row, cells["Metadata_Compound"] == "DMSO"),
                        (res.target_row, cells["Metadata_MoA"] == "Microtubule stabilizers")):
        z = (cells.loc[mask, features].to_numpy(float) - mean) / scale
        nearest = cells.index[mask][np.argmin(((z - z.mean(0)) ** 2).sum(1))]
        assert label == nearest


def test_model_without_normalisation_falls_back_to_control_median_mad(disc_model, cells, features):
    res = interpolate.interpolate_to_moa(disc_model, cells, target_moa="Actin disruptors", generate=False)
    assert res.space.source.startswith("control cells")
    dmso = cells.loc[cells["Metadata_Compound"] == "DMSO", features].to_numpy(float)
    np.testing.assert_allclose(res.space.center, np.median(dmso, axis=0))


def test_explicit_source_and_target_rows_are_used(tiny, cells):
    res = interpolate.interpolate_to_moa(tiny, cells, target_moa="Actin disruptors", source_index=1003,
                                         target_index=1070, generate=False)
    assert (res.source_row, res.target_row) == (1003, 1070)
    with pytest.raises(ValueError, match="source_index 5 is not an index label"):
        interpolate.interpolate_to_moa(tiny, cells, target_moa="Actin disruptors", source_index=5, generate=False)


def test_unknown_moa_lists_the_moas_present(tiny, cells):
    with pytest.raises(ValueError, match="no cells .* for MoA 'Kinase inhibitors'; MoAs present: Actin disruptors, DMSO"):
        interpolate.interpolate_to_moa(tiny, cells, target_moa="Kinase inhibitors")


def test_empty_control_group_is_an_error(tiny, cells):
    with pytest.raises(ValueError, match="no cells .* for the control 'DMSO'"):
        interpolate.interpolate_to_moa(tiny, cells[cells["Metadata_Compound"] != "DMSO"], target_moa="Actin disruptors")


def test_cells_with_non_finite_features_are_never_chosen(tiny, cells, features):
    broken = cells.copy()
    res0 = interpolate.interpolate_to_moa(tiny, cells, target_moa="Actin disruptors", generate=False)
    broken.loc[res0.source_row, features[0]] = np.nan
    res = interpolate.interpolate_to_moa(tiny, broken, target_moa="Actin disruptors", generate=False)
    assert res.source_row != res0.source_row


def test_target_equal_to_control_and_bad_step_size_are_rejected(tiny, cells):
    with pytest.raises(ValueError, match="both 'DMSO'"):
        interpolate.interpolate_to_moa(tiny, cells, target_moa="DMSO")
    with pytest.raises(ValueError, match="dims_per_step must be at least 1"):
        interpolate.interpolate_to_moa(tiny, cells, target_moa="Actin disruptors", dims_per_step=0)


def test_reported_cosine_is_monotone_for_many_real_cell_pairs(tiny, cells):
    rng = np.random.default_rng(3)
    dmso = cells.index[cells["Metadata_Compound"] == "DMSO"]
    other = cells.index[cells["Metadata_Compound"] != "DMSO"]
    for _ in range(40):
        res = interpolate.interpolate_to_moa(
            tiny, cells, target_moa="Actin disruptors", source_index=rng.choice(dmso), target_index=rng.choice(other),
            dims_per_step=int(rng.integers(1, 60)), generate=False)
        assert np.all(np.diff(res.cosine) >= -1e-12) and res.cosine[-1] == pytest.approx(1.0)


def test_cells_missing_model_features_are_rejected_by_name(tiny, cells):
    with pytest.raises(ValueError, match="cells lacks 1 of the model's 121 features: Cells_AreaShape_Area"):
        interpolate.interpolate_to_moa(tiny, cells.drop(columns="Cells_AreaShape_Area"), target_moa="Actin disruptors")


class _RecordingCriticModel:
    """A model with a critic that records the `refine` each generate call was given."""

    can_refine = True

    def __init__(self, model):
        self._model, self.asked = model, []
        self.feature_names = model.feature_names

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate(self, frame, *, batch_size: int = 256, refine=None):
        self.asked.append(refine)
        return self._model.generate(frame, batch_size=batch_size)


def test_strips_are_drawn_unrefined_unless_asked(tiny, cells):
    """Critic refinement optimises each image on its own, which adds jitter along a strip: off by default."""
    model = _RecordingCriticModel(tiny)
    interpolate.interpolate_to_moa(model, cells, target_moa=cells["Metadata_MoA"].iloc[-1])
    interpolate.interpolate_to_moa(model, cells, target_moa=cells["Metadata_MoA"].iloc[-1], refine=True)
    assert model.asked == [False, True]
    interpolate.interpolate_to_moa(tiny, cells, target_moa=cells["Metadata_MoA"].iloc[-1])  # no critic: no argument

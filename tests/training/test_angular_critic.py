"""Angular features in the consistency critic: an axis angle is read, scored and edited on its period.

A nucleus at +89° and one at −89° are 2° apart. The regressor reads the angle as a unit
vector, its held-out r is circular, and the critic's consistency and edit losses compare
angles modulo the period (180° for AreaShape orientation).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cp2image.data.dataset import write_dataset
from cp2image.models.regressor import FeatureRegressor, RegressorConfig
from cp2image.training.config import TrainConfig
from cp2image.training.consistency import FeatureCritic
from cp2image.evaluation.circular import circular_r
from cp2image.training.regressor import RegressorTrainConfig, load_regressor_weights, train_regressor
from cp2image.training.trainer import Trainer

ORIENT = "Nuclei_AreaShape_Orientation"
AREA = "Nuclei_AreaShape_Area"


def tiny_regressor(periods: list[float], mean: list[float], scale: list[float], heldout_r=None) -> FeatureRegressor:
    names = [AREA, ORIENT][:len(periods)]
    return FeatureRegressor(RegressorConfig(feature_names=names, feature_mean=mean, feature_scale=scale,
                                            image_size=16, widths=[2, 2], hidden=4, periods=periods,
                                            heldout_r=heldout_r or [])).eval()


def fixed_readout(reg: FeatureRegressor, values: list[float]) -> FeatureRegressor:
    """Make the regressor output `values` for any image (zero last layer, bias = values)."""
    last = reg.head[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor(values))
    return reg


def test_an_angular_feature_gets_a_cosine_and_a_sine_output():
    reg = tiny_regressor([0.0, 180.0], [100.0, 0.0], [10.0, 50.0])
    assert reg.config.angular == [1]
    assert reg(torch.rand(2, 3, 16, 16)).shape == (2, 3)  # area, cos, sin


def test_encode_then_decode_returns_the_angle_wrapped_onto_its_period():
    reg = tiny_regressor([0.0, 180.0], [100.0, 5.0], [10.0, 50.0])
    raw = torch.tensor([[120.0, 89.0], [90.0, -89.0], [80.0, 0.0], [100.0, 135.0]], dtype=torch.float64)
    z = ((raw - torch.tensor([100.0, 5.0], dtype=torch.float64)) / torch.tensor([10.0, 50.0], dtype=torch.float64))
    back = reg.double().decode(reg.encode(z)) * torch.tensor([10.0, 50.0], dtype=torch.float64) + torch.tensor(
        [100.0, 5.0], dtype=torch.float64)
    torch.testing.assert_close(back[:, 0], raw[:, 0])
    torch.testing.assert_close(back[:, 1], torch.tensor([89.0, -89.0, 0.0, -45.0], dtype=torch.float64))


def test_circular_r_sees_agreement_across_the_wrap_that_pearson_misses():
    rng = np.random.default_rng(0)
    truth = rng.uniform(-90, 90, 500)
    pred = (truth + rng.normal(0, 5, 500) + 90) % 180 - 90  # 5° noise, wrapped: ±89° pairs flip sign
    assert np.corrcoef(truth, pred)[0, 1] < circular_r(truth, pred, 180.0)
    assert circular_r(truth, pred, 180.0) > 0.95
    assert abs(circular_r(truth, rng.uniform(-90, 90, 500), 180.0)) < 0.1
    assert circular_r(truth, -truth, 180.0) == pytest.approx(-1.0)  # mirrored: turned the other way


def test_circular_r_needs_no_mean_direction_so_uniform_angles_matched_exactly_score_one():
    # near-uniform orientations: the sample mean direction is arbitrary, a mean-centred
    # coefficient would depend on it; two copies of the same angles must still score 1
    truth = np.random.default_rng(2).uniform(-90, 90, 200)
    assert circular_r(truth, truth.copy(), 180.0) == pytest.approx(1.0)
    assert circular_r(truth, (truth + 30 + 90) % 180 - 90, 180.0) == pytest.approx(1.0)  # a constant turn


def critic_with_reading(angle_deg: float, *, g_scale: float = 30.0) -> FeatureCritic:
    """A critic whose orientation reading is `angle_deg` for every image (area reads its mean)."""
    phase = 2 * math.pi * angle_deg / 180.0
    reg = fixed_readout(tiny_regressor([0.0, 180.0], [100.0, 0.0], [10.0, 50.0], heldout_r=[0.9, 0.9]),
                        [0.0, math.cos(phase), math.sin(phase)])
    return FeatureCritic(reg, [AREA, ORIENT], np.array([100.0, 0.0]), np.array([10.0, g_scale]), min_r=0.5)


def test_consistency_error_of_an_angle_is_its_distance_on_the_period_in_generator_units():
    critic = critic_with_reading(89.0)
    reading = critic(torch.rand(1, 3, 16, 16))
    z = torch.tensor([[0.0, -89.0 / 30.0]])  # asked for −89°: 2° away from the reading, not 178°
    err = critic.errors(reading, z)
    chord2 = 2 - 2 * math.cos(2 * math.pi * 2 / 180)
    assert err[0, 0].item() == pytest.approx(0.0, abs=1e-10)
    assert err[0, 1].item() == pytest.approx(chord2 * (180 / (2 * math.pi * 30)) ** 2, rel=1e-5)
    assert err[0, 1].item() == pytest.approx((2 / 30) ** 2, rel=1e-3)  # ≈ (2° / SD)², as for a linear feature
    assert critic.consistency_loss(reading, z).item() == pytest.approx(err.mean().item())


def test_edit_loss_of_an_angle_is_zero_when_the_reading_turns_by_the_request_modulo_the_period():
    base = critic_with_reading(80.0)(torch.rand(1, 3, 16, 16))
    critic = critic_with_reading(-70.0)  # the edited image reads −70° = 80° + 30° on the 180° period
    edited = critic(torch.rand(1, 3, 16, 16))
    pos = torch.tensor([1])
    for turn in (30.0, 30.0 - 180.0, 30.0 + 360.0):
        requested = torch.tensor([[0.0, turn / 30.0]])
        assert critic.edit_loss(edited, base, requested, pos).item() == pytest.approx(0.0, abs=1e-9)
    # asked for +10° instead: 20° short, scored as (20° / SD)² ≈ on the edited feature and in the mean
    wrong = critic.edit_loss(edited, base, torch.tensor([[0.0, 10.0 / 30.0]]), pos).item()
    expected = (2 - 2 * math.cos(2 * math.pi * 20 / 180)) * (180 / (2 * math.pi * 30)) ** 2
    assert wrong == pytest.approx(expected / 2 + expected, rel=1e-5)


def test_edited_profiles_have_their_angles_wrapped_back_onto_the_period():
    critic = critic_with_reading(0.0)
    z = torch.tensor([[1.0, 95.0 / 30.0], [-1.0, -100.0 / 30.0]])
    wrapped = critic.wrap(z)
    torch.testing.assert_close(wrapped[:, 0], z[:, 0])
    torch.testing.assert_close(wrapped[:, 1] * 30.0, torch.tensor([-85.0, 80.0]))


def test_an_old_linear_critic_does_not_judge_angles():
    reg = fixed_readout(tiny_regressor([0.0, 0.0], [100.0, 0.0], [10.0, 50.0], heldout_r=[0.9, 0.9]), [0.0, 0.0])
    reg.config.periods = []  # a config saved before angular outputs existed
    critic = FeatureCritic(reg, [AREA, ORIENT], np.array([100.0, 0.0]), np.array([10.0, 30.0]), min_r=0.5)
    assert critic.names == [AREA]


def test_a_linear_regressor_warm_starts_an_angular_one_except_for_the_angle():
    old = tiny_regressor([0.0, 0.0], [100.0, 0.0], [10.0, 50.0])
    new = tiny_regressor([0.0, 180.0], [100.0, 0.0], [10.0, 50.0])
    load_regressor_weights(new, old)
    torch.testing.assert_close(new.head[-1].weight[0], old.head[-1].weight[0])
    torch.testing.assert_close(new.stages[0].body[0].weight, old.stages[0].body[0].weight)


# -- the wiring, with a tiny model on elongated nuclei --------------------------------------------------------

def ellipse_dataset(path: Path, *, n: int = 48, size: int = 32, seed: int = 0) -> Path:
    """Elongated DNA ellipses at angle θ ∈ [−90°, 90°) in CellProfiler's convention; features area and θ."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    theta = rng.uniform(-90, 90, n)
    major = rng.uniform(6, 9, n)
    images = np.zeros((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        t = np.deg2rad(theta[i])
        u = xx * np.cos(t) - yy * np.sin(t)  # image rows grow downwards: −y is up
        v = xx * np.sin(t) + yy * np.cos(t)
        inside = (u / major[i]) ** 2 + (v / 3.0) ** 2 <= 1
        images[i, 0] = 220 * inside
        images[i, 1] = 100 * ((u / (major[i] + 3)) ** 2 + (v / 6.0) ** 2 <= 1)
    cells = pd.DataFrame({
        "Metadata_Plate": "P1", "Metadata_Well": [f"A{i % 4:02d}" for i in range(n)],
        "Metadata_Compound": "DMSO", "Metadata_Concentration": 0.0,
        "Metadata_Split": np.where(np.arange(n) < n - 8, "train", "test"),
        AREA: np.pi * major * 3.0, ORIENT: theta,
    })
    return write_dataset(path, images, cells, {"provenance": {"source": "tests/training ellipse_dataset"}})


@pytest.fixture(scope="module")
def ellipses(tmp_path_factory) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    data = ellipse_dataset(tmp_path_factory.mktemp("ellipses") / "ds")
    out = tmp_path_factory.mktemp("critic") / "regressor"
    train_regressor(data, out, RegressorTrainConfig(steps=30, batch_size=16, heldout_split="test", widths=[4, 8],
                                                    progress=False))
    return data, out


def test_trained_regressor_reads_the_orientation_as_an_angle(ellipses):
    _, out = ellipses
    reg = FeatureRegressor.from_pretrained(out)
    assert reg.config.periods == [0.0, 180.0] and reg.config.angular == [1]
    r = dict(zip(reg.config.feature_names, reg.config.heldout_r))
    assert -1.0 <= r[ORIENT] <= 1.0


def test_training_with_an_angular_critic_logs_finite_consistency_and_edit_terms(ellipses, tmp_path):
    data, critic = ellipses
    config = TrainConfig(steps=3, batch_size=8, base_filters=4, kernel_size=3, gamma=[0.1] * 5, gamma_delay=[0] * 5,
                         gamma_ramp=[2] * 5, log_every=1, grid_every=3, checkpoint_every=3, grid_cells=4,
                         progress=False, seed=0, consistency_regressor=str(critic), consistency_weight=1.0,
                         consistency_min_r=-1.0, edit_weight=1.0)
    result = Trainer(config, data, tmp_path / "run").run()
    assert np.isfinite(result.final_losses["consistency"]) and np.isfinite(result.final_losses["edit"])


def test_the_angular_consistency_term_moves_the_generator(ellipses):
    """Gradient wiring: the orientation error back-propagates into the images the critic reads."""
    data, critic_dir = ellipses
    reg = FeatureRegressor.from_pretrained(critic_dir)
    critic = FeatureCritic(reg, [ORIENT], np.array([0.0]), np.array([50.0]), min_r=-1.0)
    images = torch.rand(4, 3, 32, 32, requires_grad=True)
    critic.consistency_loss(critic(images), torch.tensor([[0.5], [-0.5], [1.7], [-1.7]])).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_features_preserved_scores_an_angle_on_its_period():
    from cp2image.evaluation.circular import on_period

    rng = np.random.default_rng(1)
    near_vertical = (90 + rng.normal(0, 20, 300) + 90) % 180 - 90  # half at +70…90°, half at −90…−70°
    real = pd.DataFrame({ORIENT: near_vertical, AREA: rng.uniform(50, 100, 300)})
    generated = real.copy()
    generated[ORIENT] = (real[ORIENT] + rng.normal(0, 4, 300) + 90) % 180 - 90
    table = pd.DataFrame({"feature": [ORIENT, AREA], "pearson_r": [0.1, 1.0]})
    out = on_period(table, real, generated)
    assert out["pearson_r"].iloc[0] > 0.9 > np.corrcoef(real[ORIENT], generated[ORIENT])[0, 1]
    assert out["pearson_r"].iloc[1] == 1.0  # linear features keep their Pearson r

"""Feature consistency: the coupling maths, the critic's unit conversion, the edit loss and the wiring."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from cp2image.models.regressor import FeatureRegressor, RegressorConfig
from cp2image.training.config import TrainConfig
from cp2image.training.consistency import (CriticEnsemble, FeatureCritic, coupling_matrix, edit_loss,
                                            sample_coupled_edits)
from cp2image.training.regressor import RegressorTrainConfig, train_regressor
from cp2image.training.trainer import Trainer
from training_fixtures import tiny_run_config


def test_coupling_matrix_is_the_regression_of_every_feature_on_the_moved_one():
    # Σ = [[1, .5, 0], [.5, 2, .3], [0, .3, 1]]: moving feature 0 by δ moves feature 1 by 0.5δ, feature 2 by 0
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]])
    x = np.random.default_rng(0).multivariate_normal(np.zeros(3), cov, size=200_000)
    c = coupling_matrix(x)
    np.testing.assert_allclose(np.diag(c), 1.0, atol=1e-6)
    np.testing.assert_allclose(c[:, 0], [1.0, 0.5, 0.0], atol=0.01)
    np.testing.assert_allclose(c[:, 1], [0.25, 1.0, 0.15], atol=0.01)  # Σ[:, 1] / 2


def test_coupling_matrix_rejects_a_single_row():
    with pytest.raises(ValueError, match="n ≥ 2"):
        coupling_matrix(np.zeros((1, 3)))


def test_coupled_edits_move_the_chosen_feature_by_delta_and_the_others_by_its_column():
    coupling = torch.tensor([[1.0, 0.2], [0.5, 1.0]])
    z = torch.zeros(64, 2)
    edited, j, delta = sample_coupled_edits(z, coupling, torch.tensor([0, 1]), max_sd=2.0,
                                            generator=torch.Generator().manual_seed(0))
    assert set(j.tolist()) == {0, 1} and delta.abs().max() <= 2.0
    torch.testing.assert_close(edited, coupling[:, j].T * delta[:, None])
    torch.testing.assert_close(edited[torch.arange(64), j], delta)


def test_edit_loss_is_zero_when_the_measured_change_equals_the_request_and_analytic_otherwise():
    base = torch.tensor([[0.1, 0.2, 0.3]])
    requested = torch.tensor([[1.0, 0.5, 0.0]])
    assert edit_loss(base + requested, base, requested, torch.tensor([0])).item() == 0.0
    # the image did not change at all: mean(1², .5², 0²) + (edited feature 0: 1²)
    assert edit_loss(base, base, requested, torch.tensor([0])).item() == pytest.approx((1 + 0.25) / 3 + 1)


def constant_regressor(names, mean, scale, heldout_r, value: float) -> FeatureRegressor:
    """A regressor whose output is `value` for every feature (zero last layer, bias = value)."""
    reg = FeatureRegressor(RegressorConfig(feature_names=names, feature_mean=mean, feature_scale=scale,
                                           image_size=16, widths=[2, 2], hidden=4, heldout_r=heldout_r))
    last = reg.head[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, value)
    return reg.eval()


def test_critic_converts_the_regressors_units_into_the_generators_and_skips_unreliable_features():
    # regressor: feature a has mean 10, SD 2 and r 0.9; b has r 0.2 (skipped); its output is 1 SD for all
    reg = constant_regressor(["b", "a"], [0.0, 10.0], [1.0, 2.0], [0.2, 0.9], value=1.0)
    # generator standardises a with mean 11, SD 4: raw 12 is (12 − 11) / 4 = 0.25 in generator units
    critic = FeatureCritic(reg, ["a", "b", "c"], np.array([11.0, 0.0, 0.0]), np.array([4.0, 1.0, 1.0]), min_r=0.5)
    assert critic.names == ["a"] and critic.select.tolist() == [0]
    out = critic(torch.rand(3, 3, 16, 16))
    torch.testing.assert_close(out, torch.full((3, 1), 0.25))
    assert not any(p.requires_grad for p in critic.parameters())


def test_critic_that_sees_no_feature_is_refused():
    reg = constant_regressor(["a"], [0.0], [1.0], [0.1], value=0.0)
    with pytest.raises(ValueError, match="judges none"):
        FeatureCritic(reg, ["a"], np.zeros(1), np.ones(1), min_r=0.5)


def test_consistency_options_need_a_regressor_and_a_feature_conditioned_model():
    with pytest.raises(ValueError, match="need consistency_regressor"):
        TrainConfig(consistency_weight=0.1)
    with pytest.raises(ValueError, match="needs feature inputs"):
        TrainConfig(model="vae", edit_weight=0.1, consistency_regressor="r")
    with pytest.raises(ValueError, match="needs edit_weight"):
        TrainConfig(edit_adversarial_weight=0.1, consistency_regressor="r", consistency_weight=1.0)


def test_trained_regressor_round_trips_and_records_held_out_r(blob_regressor):
    reg = FeatureRegressor.from_pretrained(blob_regressor)
    rows = list(csv.DictReader(open(blob_regressor / "heldout_r.csv")))
    assert [r["feature"] for r in rows] == reg.config.feature_names
    assert [float(r["heldout_r"]) for r in rows] == pytest.approx(reg.config.heldout_r)
    # the blob features are the disc radius and brightness: even 40 steps see the nucleus area
    assert dict(zip(reg.config.feature_names, reg.config.heldout_r))["Nuclei_AreaShape_Area"] > 0.5


def tiny(**overrides) -> TrainConfig:
    """Six steps, checkpoints at 3 and 6 (the resume tests stop in between)."""
    return tiny_run_config(**{"steps": 6, "log_every": 2, "grid_every": 3, "checkpoint_every": 3, **overrides})


def test_consistency_and_edit_terms_are_logged_and_resume_exactly(blob_data, blob_regressor, tmp_path):
    opts = dict(consistency_regressor=str(blob_regressor), consistency_weight=1.0, consistency_min_r=-1.0,
                edit_weight=1.0, edit_adversarial_weight=0.1, steps=6, checkpoint_every=3)
    straight = Trainer(tiny(**opts), blob_data, tmp_path / "a").run()
    Trainer(tiny(**{**opts, "steps": 3}), blob_data, tmp_path / "b").run()
    Trainer(tiny(**opts), blob_data, tmp_path / "b", resume=True).run()
    assert {"consistency", "edit", "edit_adversarial"} <= set(straight.final_losses)
    from cp2image.models import CP2Image

    m1 = CP2Image.from_pretrained(tmp_path / "a" / "model")
    m2 = CP2Image.from_pretrained(tmp_path / "b" / "model")
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k


def test_consistency_changes_the_generator_update(blob_data, blob_regressor, tmp_path):
    """Same seed and batches; the only difference is λ_c — the trained weights must differ."""
    plain = Trainer(tiny(steps=2), blob_data, tmp_path / "plain").run()
    critic = Trainer(tiny(steps=2, consistency_regressor=str(blob_regressor), consistency_weight=10.0,
                          consistency_min_r=-1.0), blob_data, tmp_path / "critic").run()
    from cp2image.models import CP2Image

    w_plain = CP2Image.from_pretrained(plain.model_dir).state_dict()
    w_critic = CP2Image.from_pretrained(critic.model_dir).state_dict()
    assert any(not torch.equal(w_plain[k], w_critic[k]) for k in w_plain if w_plain[k].is_floating_point())
    assert "consistency" not in plain.final_losses and "consistency" in critic.final_losses


def test_init_from_an_exported_model_copies_the_generator(blob_data, tmp_path):
    first = Trainer(tiny(steps=2), blob_data, tmp_path / "first").run()
    again = Trainer(tiny(steps=1, lr=1e-12, ema_decay=0.0, init_from=str(first.model_dir)), blob_data,
                    tmp_path / "again").run()
    from cp2image.models import CP2Image

    before = CP2Image.from_pretrained(first.model_dir).state_dict()
    after = CP2Image.from_pretrained(again.model_dir).state_dict()
    for k in before:
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # one training-mode step updates batch-norm statistics
        torch.testing.assert_close(after[k], before[k], atol=1e-6, rtol=0, msg=k)


def test_regressor_init_from_starts_at_the_source_weights(blob_data, blob_regressor, tmp_path):
    tuned = train_regressor(blob_data, tmp_path / "tuned", RegressorTrainConfig(
        steps=1, batch_size=16, lr=1e-12, heldout_split="test", widths=[4, 8], progress=False,
        init_from=str(blob_regressor)))
    source = FeatureRegressor.from_pretrained(blob_regressor).state_dict()
    for k, v in tuned.state_dict().items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # one training-mode step updates batch-norm statistics
        torch.testing.assert_close(v, source[k], atol=1e-6, rtol=0, msg=k)


def test_regressor_init_from_another_architecture_is_refused(blob_data, blob_regressor, tmp_path):
    with pytest.raises(ValueError, match="architecture differs"):
        train_regressor(blob_data, tmp_path / "wide", RegressorTrainConfig(
            steps=1, batch_size=16, heldout_split="test", widths=[4, 16], progress=False,
            init_from=str(blob_regressor)))


def test_an_ensemble_reads_as_the_mean_of_its_members_and_scores_it_as_one_critic_would():
    names, mean, scale = ["a", "b"], np.array([0.0, 0.0]), np.array([1.0, 1.0])
    low = constant_regressor(names, [0.0, 0.0], [1.0, 1.0], [0.9, 0.9], value=1.0)
    high = constant_regressor(names, [0.0, 0.0], [1.0, 1.0], [0.9, 0.9], value=3.0)
    ensemble = CriticEnsemble([low, high], names, mean, scale, min_r=0.5)
    reading = ensemble(torch.rand(2, 3, 16, 16))
    torch.testing.assert_close(reading, torch.full((2, 2), 2.0))
    single = FeatureCritic(low, names, mean, scale, min_r=0.5)
    z = torch.zeros(2, 2)
    torch.testing.assert_close(ensemble.consistency_loss(reading, z), single.consistency_loss(reading, z))
    assert torch.equal(ensemble.select, single.select)


def test_consistency_ensemble_needs_the_critic_terms():
    with pytest.raises(ValueError, match="consistency_ensemble"):
        TrainConfig(consistency_ensemble=True)


def test_training_through_a_critic_folders_ensemble_reads_every_member(blob_data, blob_regressor, tmp_path):
    """A folder listing a member: the ensemble run differs from the first-critic run (the member moved its reading)."""
    import json
    import shutil

    folder = tmp_path / "critic"
    shutil.copytree(blob_regressor, folder)
    shutil.copytree(blob_regressor, folder / "member-1")
    member = FeatureRegressor.from_pretrained(folder / "member-1")
    with torch.no_grad():
        for p in member.parameters():
            p.add_(0.05 * torch.randn_like(p))
    member.save_pretrained(folder / "member-1")
    (folder / "members.json").write_text(json.dumps({"members": ["member-1"]}))
    opts = dict(steps=2, consistency_regressor=str(folder), consistency_weight=10.0, consistency_min_r=-1.0)
    first = Trainer(tiny(**opts), blob_data, tmp_path / "first").run()
    both = Trainer(tiny(**opts, consistency_ensemble=True), blob_data, tmp_path / "both").run()
    assert first.final_losses["consistency"] != both.final_losses["consistency"]

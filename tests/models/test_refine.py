"""Critic-guided refinement: the optimisation's wiring and the critic shipped in a model folder.

Tiny models only; whether refinement helps real cells is a benchmark figure
(docs/generator-ablation.md), not a test.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cp2image.models import CP2Image
from cp2image.models.cp2image import CP2ImageConfig
from cp2image.models.refine import (
    CRITIC_DIR, MEMBERS_FILE, REFINE_FILE, CriticUnavailable, RefineConfig, find_critic, install_critic, refine_inputs,
)
from cp2image.models.regressor import FeatureRegressor, RegressorConfig
from cp2image.training.consistency import CriticEnsemble, FeatureCritic

NAMES = ["a", "b", "c"]


def tiny_model(seed: int = 0) -> CP2Image:
    torch.manual_seed(seed)
    config = CP2ImageConfig(feature_names=NAMES, feature_mean=[0.0] * 3, feature_scale=[1.0] * 3, image_size=20,
                            base_filters=4, kernel_size=3, generator_channel_mults=[1.0, 2.0, 1.0, 0.5],
                            clip_sigma=3.0)
    return CP2Image(config).eval()


def tiny_regressor(seed: int = 1, heldout_r: list[float] | None = None) -> FeatureRegressor:
    torch.manual_seed(seed)
    config = RegressorConfig(feature_names=NAMES, feature_mean=[0.0] * 3, feature_scale=[1.0] * 3, image_size=20,
                             widths=[4, 4], hidden=8, heldout_r=heldout_r or [0.9, 0.9, 0.1])
    return FeatureRegressor(config).eval()


def critic_of(model: CP2Image, regressor: FeatureRegressor, min_r: float = 0.5) -> FeatureCritic:
    stats = model.feature_statistics
    return FeatureCritic(regressor, NAMES, stats.mean, stats.scale, min_r=min_r)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A saved tiny model with a critic installed (refinement settings: 5 steps)."""
    model_dir = tmp_path / "model"
    tiny_model().save_pretrained(model_dir)
    regressor_dir = tmp_path / "regressor"
    tiny_regressor().save_pretrained(regressor_dir)
    install_critic(regressor_dir, model_dir, config=RefineConfig(steps=5, lr=0.1))
    return model_dir


def test_refinement_lowers_the_critics_loss():
    model = tiny_model()
    critic = critic_of(model, tiny_regressor())
    z = torch.randn(6, 3)
    for p in model.parameters():
        p.requires_grad_(False)
    out = refine_inputs(model, critic, z, RefineConfig(steps=20, lr=0.1, prior_weight=0.0), clip_sigma=3.0)
    assert (out.loss_after < out.loss_before).all()
    again = critic.errors(critic(model(out.z)), z).mean(dim=1)
    torch.testing.assert_close(again, out.loss_after)


def test_zero_steps_leave_the_input_unchanged():
    model = tiny_model()
    z = torch.randn(4, 3)
    out = refine_inputs(model, critic_of(model, tiny_regressor()), z, RefineConfig(steps=0), clip_sigma=3.0)
    torch.testing.assert_close(out.z, z)
    torch.testing.assert_close(out.loss_before, out.loss_after)


def test_refined_inputs_stay_within_the_clip_and_within_steps_times_lr_of_the_request():
    model = tiny_model()
    z = torch.tensor([[2.9, -2.9, 0.0], [0.0, 0.0, 0.0]])
    cfg = RefineConfig(steps=8, lr=0.5, prior_weight=0.0)
    out = refine_inputs(model, critic_of(model, tiny_regressor()), z, cfg, clip_sigma=3.0)
    assert out.z.abs().max() <= 3.0
    assert (out.z - z).abs().max() <= cfg.steps * cfg.lr * 1.01  # Adam moves each input by ≤ lr per step


def test_a_large_prior_keeps_the_input_near_the_request():
    model = tiny_model()
    critic = critic_of(model, tiny_regressor())
    z = torch.randn(4, 3)
    free = refine_inputs(model, critic, z, RefineConfig(steps=30, lr=0.05, prior_weight=0.0), clip_sigma=3.0).z
    held = refine_inputs(model, critic, z, RefineConfig(steps=30, lr=0.05, prior_weight=1e4), clip_sigma=3.0).z
    assert (held - z).norm() < (free - z).norm()


def test_generator_weights_get_no_gradient_and_stay_as_loaded(folder):
    model = CP2Image.from_pretrained(folder)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.generate(np.random.default_rng(0).normal(size=(3, 3)))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])
    assert all(p.grad is None for p in model.parameters())


def test_a_model_folder_with_a_critic_refines_by_default_with_its_settings(folder):
    model = CP2Image.from_pretrained(folder)
    assert model.can_refine and model.refinement == RefineConfig(steps=5, lr=0.1)
    profiles = np.random.default_rng(0).normal(size=(4, 3))
    plain = model.generate(profiles, refine=False)
    assert not np.array_equal(model.generate(profiles), plain)
    np.testing.assert_array_equal(model.generate(profiles, refine=RefineConfig(steps=0)), plain)
    model.refinement = None  # the off switch
    np.testing.assert_array_equal(model.generate(profiles), plain)


def test_refined_generation_matches_the_optimisation_it_wraps(folder):
    model = CP2Image.from_pretrained(folder)
    profiles = np.random.default_rng(1).normal(size=(2, 3)).astype(np.float32)
    z = torch.from_numpy(model.normalise(profiles))
    refined = model.refine_normalised(z, model.refinement)
    expected = model.generate_from_normalised(refined.numpy(), refine=False)
    np.testing.assert_array_equal(model.generate(profiles), expected)


def test_a_model_folder_without_a_critic_generates_as_before_and_refuses_refinement(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    model = CP2Image.from_pretrained(tmp_path)
    assert not model.can_refine and model.refinement is None and find_critic(tmp_path) is None
    model.generate(np.zeros((1, 3)))
    with pytest.raises(CriticUnavailable, match="has none"):
        model.generate(np.zeros((1, 3)), refine=True)


def test_a_corrupt_critic_file_is_named_in_the_error(folder):
    weights = folder / CRITIC_DIR / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # a flipped bit inside a tensor
    weights.write_bytes(bytes(data))
    model = CP2Image.from_pretrained(folder)  # the critic is read when refinement first runs
    with pytest.raises(CriticUnavailable, match="critic.*model.safetensors"):
        model.generate(np.zeros((1, 3)))


def test_a_missing_critic_weights_file_is_named(folder):
    (folder / CRITIC_DIR / "model.safetensors").unlink()
    with pytest.raises(CriticUnavailable, match="model.safetensors is missing"):
        CP2Image.from_pretrained(folder).generate(np.zeros((1, 3)))


def test_a_critic_for_other_features_is_refused_with_the_folder_named(folder, tmp_path):
    other = FeatureRegressor(RegressorConfig(feature_names=["x", "y"], feature_mean=[0.0, 0.0],
                                             feature_scale=[1.0, 1.0], image_size=20, widths=[4, 4], hidden=8,
                                             heldout_r=[0.9, 0.9]))
    other.save_pretrained(tmp_path / "other")
    install_critic(tmp_path / "other", folder)
    with pytest.raises(CriticUnavailable, match="does not fit this model"):
        CP2Image.from_pretrained(folder).generate(np.zeros((1, 3)))


def test_a_broken_refine_json_is_named(folder):
    (folder / CRITIC_DIR / REFINE_FILE).write_text(json.dumps({"steps": -1}))
    with pytest.raises(CriticUnavailable, match="refine.json"):
        CP2Image.from_pretrained(folder)


def test_install_refuses_a_critic_that_does_not_load_and_keeps_the_old_one(folder, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CriticUnavailable):
        install_critic(broken, folder)
    assert CP2Image.from_pretrained(folder).refinement == RefineConfig(steps=5, lr=0.1)


@pytest.mark.parametrize("bad", [dict(steps=-1), dict(steps=1.5), dict(lr=0.0), dict(prior_weight=-1.0),
                                 dict(min_r=float("nan")), dict(sweeps="no")])
def test_refine_config_rejects_impossible_settings(bad):
    with pytest.raises(ValueError, match="RefineConfig"):
        RefineConfig(**bad)


def test_single_feature_sweeps_are_drawn_unrefined_unless_asked(folder):
    """'This feature only' sweeps stay as drawn by default (refining them was measured to break monotony)."""
    import pandas as pd

    from cp2image.analysis.perturb import sweep_feature

    model = CP2Image.from_pretrained(folder)
    cell = pd.Series({"a": 0.1, "b": -0.2, "c": 0.3})
    default = sweep_feature(model, cell, "a", mode="single", n_steps=3, unit="raw", measure_back=False)
    plain = sweep_feature(model, cell, "a", mode="single", n_steps=3, unit="raw", measure_back=False, refine=False)
    asked = sweep_feature(model, cell, "a", mode="single", n_steps=3, unit="raw", measure_back=False, refine=True)
    np.testing.assert_array_equal(default.images, plain.images)
    assert not np.array_equal(asked.images, plain.images)


def test_coupled_sweeps_follow_the_models_sweep_setting(folder):
    """A model whose settings say refinement hurt its sweeps (RefineConfig.sweeps=False) sweeps unrefined."""
    import pandas as pd

    from cp2image.analysis.perturb import sweep_feature

    from cp2image.analysis.coupling import fit_coupling

    model = CP2Image.from_pretrained(folder)
    cells = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=NAMES)
    coupling = fit_coupling(model, cells)
    cell = pd.Series({"a": 0.1, "b": -0.2, "c": 0.3})

    def sweep(refine):
        return sweep_feature(model, cell, "a", coupling=coupling, n_steps=3, unit="raw", measure_back=False,
                             refine=refine).images

    plain = sweep(False)
    assert not np.array_equal(sweep(None), plain)  # sweeps=True (the folder's setting): refined
    model.refinement = RefineConfig(steps=5, lr=0.1, sweeps=False)
    np.testing.assert_array_equal(sweep(None), plain)
    assert not np.array_equal(sweep(True), plain)  # asked for explicitly
    assert model.resolve_refine(None) == RefineConfig(steps=5, lr=0.1, sweeps=False)  # generate still refines


@pytest.mark.parametrize("context", [torch.inference_mode, torch.no_grad])
def test_refinement_works_for_a_caller_under_inference_mode_or_no_grad(folder, context):
    """Also when the first refinement of the model (which builds the critic) happens inside the caller's
    context: benchmarks time generation under inference_mode, and a critic built there could not be
    used for backward later."""
    profiles = np.random.default_rng(2).normal(size=(2, 3))
    expected = CP2Image.from_pretrained(folder).generate(profiles)
    model = CP2Image.from_pretrained(folder)
    with context():
        np.testing.assert_array_equal(model.generate(profiles), expected)
    np.testing.assert_array_equal(model.generate(profiles), expected)


def test_refine_true_uses_the_folders_settings_even_when_the_default_is_off(folder):
    model = CP2Image.from_pretrained(folder)
    model.refinement = None
    assert model.resolve_refine(True) == RefineConfig(steps=5, lr=0.1)


@pytest.mark.parametrize("flag", [[], ["--no-refine"]])
def test_generate_command_refines_by_default_and_not_with_no_refine(folder, tmp_path, flag):
    import pandas as pd

    from cp2image.cli import main

    frame = pd.DataFrame(np.random.default_rng(3).normal(size=(2, 3)), columns=NAMES)
    frame.to_csv(tmp_path / "p.csv", index=False)
    assert main(["generate", "--model", str(folder), "--profiles", str(tmp_path / "p.csv"), "--out",
                 str(tmp_path / "out"), "--format", "npy", *flag]) == 0
    expected = CP2Image.from_pretrained(folder).generate(frame, refine=False if flag else None)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "images.npy"), expected)


def test_the_written_out_adam_takes_torch_adams_steps():
    from cp2image.models.refine import _Adam

    torch.manual_seed(0)
    ours = torch.randn(4, 3)
    theirs = ours.clone().requires_grad_(True)
    reference = torch.optim.Adam([theirs], lr=0.05)
    adam = _Adam(ours, lr=0.05)
    for _ in range(10):
        grad = torch.randn(4, 3)
        theirs.grad = grad.clone()
        reference.step()
        adam.step(grad)
    torch.testing.assert_close(ours, theirs.detach())


# ----------------------------------------------------------------------------- joint refinement of a sweep


def test_sweep_roughness_is_zero_for_a_linear_sweep_and_counts_second_differences():
    from cp2image.models.refine import sweep_roughness

    steps = torch.linspace(-1, 1, 5)[:, None]
    linear = torch.cat([2 * steps, -steps + 0.3], dim=1)
    assert float(sweep_roughness(linear)) == pytest.approx(0.0, abs=1e-12)
    kink = torch.zeros(5, 2)
    kink[2, 0] = 1.0  # second differences of feature 0: 1, −2, 1 → squared 1, 4, 1; mean over 2 features
    assert float(sweep_roughness(kink)) == pytest.approx((1 + 4 + 1) / 2)
    assert float(sweep_roughness(torch.ones(2, 3))) == 0.0  # fewer than 3 steps: no second difference


def test_the_smoothness_term_lowers_the_second_differences_of_the_refinement_along_a_sweep():
    """Refined one by one, each step of a sweep follows its own critic error; refined jointly with
    μ > 0, the correction z' − z changes (more nearly) linearly along the sweep."""
    from cp2image.models.refine import sweep_roughness

    model = tiny_model()
    critic = critic_of(model, tiny_regressor())
    for p in model.parameters():
        p.requires_grad_(False)
    z = torch.linspace(-2, 2, 9)[:, None] * torch.tensor([[1.0, 0.5, -0.3]])  # one coupled sweep
    each = RefineConfig(steps=10, lr=0.1, prior_weight=0.1)
    alone = refine_inputs(model, critic, z, each, clip_sigma=3.0).z - z
    joint = refine_inputs(model, critic, z, RefineConfig(steps=10, lr=0.1, prior_weight=0.1, smoothness=100.0),
                          clip_sigma=3.0).z - z
    assert float(sweep_roughness(joint)) < 0.5 * float(sweep_roughness(alone))
    assert float(joint.abs().max()) > 0  # it still refines


def test_without_smoothness_a_rows_refinement_does_not_depend_on_its_neighbours():
    model = tiny_model()
    critic = critic_of(model, tiny_regressor())
    for p in model.parameters():
        p.requires_grad_(False)
    z = torch.randn(5, 3)
    cfg = RefineConfig(steps=6, lr=0.1)
    together = refine_inputs(model, critic, z, cfg, clip_sigma=3.0).z
    torch.testing.assert_close(together[2:3], refine_inputs(model, critic, z[2:3], cfg, clip_sigma=3.0).z)
    joint = refine_inputs(model, critic, z, RefineConfig(steps=6, lr=0.1, smoothness=10.0), clip_sigma=3.0).z
    assert not torch.allclose(joint[2:3], together[2:3])  # with μ > 0 the steps are refined together


@pytest.mark.parametrize("bad", [dict(smoothness=-1.0), dict(sweep_smoothness=float("inf")),
                                 dict(sweep_smoothness="10")])
def test_refine_config_rejects_impossible_smoothness(bad):
    with pytest.raises(ValueError, match="RefineConfig"):
        RefineConfig(**bad)


def test_a_refined_sweep_refines_its_steps_jointly_with_the_settings_sweep_smoothness(folder):
    """sweep_feature passes the model's settings with smoothness = sweep_smoothness; plain generate keeps
    rows independent, and an explicit smoothness is used as given."""
    import pandas as pd

    from cp2image.analysis.coupling import fit_coupling
    from cp2image.analysis.perturb import sweep_feature

    model = CP2Image.from_pretrained(folder)
    coupling = fit_coupling(model, pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=NAMES))
    cell = pd.Series({"a": 0.1, "b": -0.2, "c": 0.3})
    seen = []
    original = model.refine_normalised

    def spy(z, config):
        seen.append(config)
        return original(z, config)

    model.refine_normalised = spy

    def sweep(refine=None, mode="coupled"):
        return sweep_feature(model, cell, "a", mode=mode, coupling=coupling, n_steps=5, unit="raw",
                             measure_back=False, refine=refine, batch_size=2).images

    model.refinement = RefineConfig(steps=5, lr=0.1, sweep_smoothness=7.0)
    sweep()
    assert [c.smoothness for c in seen] == [7.0]  # one batch: the whole sweep, although batch_size=2
    seen.clear()
    sweep(refine=True)  # the folder's refine.json has sweep_smoothness 0: step by step, in batches of 2
    assert [c.smoothness for c in seen] == [0.0, 0.0, 0.0]
    seen.clear()
    sweep(refine=RefineConfig(steps=5, lr=0.1, smoothness=3.0, sweep_smoothness=7.0))
    assert [c.smoothness for c in seen] == [3.0]
    seen.clear()
    model.generate(np.zeros((4, 3)))  # plain generation: rows on their own
    assert [c.smoothness for c in seen] == [0.0]
    seen.clear()
    sweep(mode="single")
    assert seen == []  # 'this feature only' stays as drawn by default


# ----------------------------------------------------------------------------- critic ensembles


def test_an_ensemble_reads_the_mean_of_its_members_over_the_features_all_of_them_judge():
    model = tiny_model()
    stats = model.feature_statistics
    first, second = tiny_regressor(seed=1, heldout_r=[0.9, 0.9, 0.1]), tiny_regressor(seed=2, heldout_r=[0.9, 0.1, 0.9])
    ensemble = CriticEnsemble([first, second], NAMES, stats.mean, stats.scale, min_r=0.5)
    assert ensemble.names == ["a"]  # b and c are each read well by one member only
    images = torch.rand(3, 3, 20, 20)
    alone = [FeatureCritic(r, NAMES, stats.mean, stats.scale, min_r=0.5, judged={"a"}) for r in (first, second)]
    torch.testing.assert_close(ensemble(images), (alone[0](images) + alone[1](images)) / 2)
    z = torch.randn(3, 3)
    torch.testing.assert_close(ensemble.errors(ensemble(images), z), (ensemble(images)[:, :1] - z[:, :1]) ** 2)


def test_an_installed_ensemble_is_what_the_model_refines_with(folder, tmp_path):
    for seed in (2, 3):
        tiny_regressor(seed=seed).save_pretrained(tmp_path / f"reg{seed}")
    install_critic(tmp_path / "regressor", folder, config=RefineConfig(steps=5, lr=0.1),
                   members=[tmp_path / "reg2", tmp_path / "reg3"])
    assert json.loads((folder / CRITIC_DIR / MEMBERS_FILE).read_text()) == {"members": ["member-1", "member-2"]}
    model = CP2Image.from_pretrained(folder)
    assert len(model.critic.regressors) == 3
    stats = model.feature_statistics
    ensemble = CriticEnsemble([tiny_regressor(seed=s) for s in (1, 2, 3)], NAMES, stats.mean, stats.scale, min_r=0.5)
    profiles = np.random.default_rng(2).normal(size=(2, 3)).astype(np.float32)
    z = torch.from_numpy(model.normalise(profiles))
    for p in model.parameters():
        p.requires_grad_(False)
    expected = refine_inputs(model, ensemble, z, model.refinement, clip_sigma=stats.clip_sigma).z
    np.testing.assert_array_equal(model.generate(profiles), model.generate_from_normalised(expected.numpy()))
    install_critic(tmp_path / "regressor", folder, config=RefineConfig(steps=5, lr=0.1))  # back to one critic
    assert not (folder / CRITIC_DIR / MEMBERS_FILE).exists()
    assert not np.array_equal(CP2Image.from_pretrained(folder).generate(profiles), model.generate(profiles))


@pytest.mark.parametrize("listing, problem", [({"members": ["../../elsewhere"]}, "outside the critic folder"),
                                              ({"members": "member-1"}, "not a valid member list"),
                                              ({}, "not a valid member list")])
def test_a_bad_member_list_is_refused_naming_the_file(folder, listing, problem):
    (folder / CRITIC_DIR / MEMBERS_FILE).write_text(json.dumps(listing))
    with pytest.raises(CriticUnavailable, match=f"members.json.*{problem}|{problem}"):
        CP2Image.from_pretrained(folder).generate(np.zeros((1, 3)))


def test_a_hub_model_brings_its_whole_critic_ensemble(folder, tmp_path, monkeypatch):
    """The Hub path fetches critic/members.json and every listed member (a fake Hub serving the folder)."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    from cp2image.models.cp2image import _hub_critic

    tiny_regressor(seed=2).save_pretrained(tmp_path / "reg2")
    install_critic(tmp_path / "regressor", folder, members=[tmp_path / "reg2"])
    cache = tmp_path / "hub-cache"
    fetched = []

    def fake_download(*, repo_id, filename, **_):
        source = folder / filename
        if not source.is_file():
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        fetched.append(filename)
        target = cache / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    critic = _hub_critic("someone/model", {})
    assert sorted(fetched) == ["critic/config.json", "critic/member-1/config.json", "critic/member-1/model.safetensors",
                               "critic/members.json", "critic/model.safetensors"]
    assert len(critic.regressors) == 2


def test_critic_install_command_installs_an_ensemble_and_keeps_or_sets_the_settings(folder, tmp_path, capsys):
    from cp2image.cli import main

    tiny_regressor(seed=2).save_pretrained(tmp_path / "reg2")
    assert main(["critic", "install", "--model", str(folder), str(tmp_path / "regressor"), str(tmp_path / "reg2")]) == 0
    model = CP2Image.from_pretrained(folder)
    assert len(model.critic.regressors) == 2
    assert model.refinement == RefineConfig(steps=5, lr=0.1)  # the folder's settings kept
    assert main(["critic", "install", "--model", str(folder), str(tmp_path / "regressor"),
                 "--refine", '{"steps": 10, "lr": 0.05}']) == 0
    model = CP2Image.from_pretrained(folder)
    assert len(model.critic.regressors) == 1 and model.refinement == RefineConfig(steps=10, lr=0.05)
    assert "installed a critic" in capsys.readouterr().out
    assert main(["critic", "install", "--model", str(folder), str(tmp_path / "regressor"),
                 "--refine", '{"stepz": 3}']) == 2
    assert "RefineConfig fields" in capsys.readouterr().err

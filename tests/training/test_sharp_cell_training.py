"""Training with a noise input, a projection discriminator and an adversarial term (issue 13).

Off by default (a default run's networks and logs are the old ones); on, the new parameters
get gradients, the options change the update, a warm start from a noise-free model draws
that model's images exactly, and a resumed run repeats its noise.
"""
from __future__ import annotations

import pytest
import torch

from cp2image.models import CP2Image
from cp2image.models.cp2image import CP2ImageConfig
from cp2image.training import checkpoint as ckpt
from cp2image.training import objectives as objectives_module
from cp2image.training import runtime as rt_mod
from cp2image.training.config import TrainConfig
from cp2image.training.objectives import CP2ImageObjective
from cp2image.training.state import initialise_from
from cp2image.training.trainer import Trainer
from training_fixtures import tiny_run_config as tiny

P = 4  # the blob dataset's features


def objective(config: TrainConfig) -> CP2ImageObjective:
    torch.manual_seed(0)
    model_config = CP2ImageConfig(feature_names=[f"f{i}" for i in range(P)], feature_mean=[0.0] * P,
                                  feature_scale=[1.0] * P, image_size=32, base_filters=4, kernel_size=3)
    obj = CP2ImageObjective(config, rt_mod.Runtime(device=torch.device("cpu")), model_config)
    obj.finalise(lambda net: net)
    return obj


def batch(b: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"images": torch.randint(0, 256, (b, 3, 32, 32), generator=g, dtype=torch.uint8),
            "real": torch.randint(0, 256, (b, 3, 32, 32), generator=g, dtype=torch.uint8),
            "features": torch.randn(b, P, generator=g)}


def test_options_are_off_by_default_and_checked():
    c = TrainConfig()
    assert (c.noise_dim, c.projection_discriminator, c.adversarial_weight) == (0, False, 0.0)
    with pytest.raises(ValueError, match="noise_dim"):
        TrainConfig(noise_dim=-1)
    with pytest.raises(ValueError, match="adversarial_weight"):
        TrainConfig(adversarial_weight=-0.1)
    with pytest.raises(ValueError, match="CP2Image options"):
        TrainConfig(model="vae", projection_discriminator=True)


def test_a_default_objective_builds_the_old_networks_and_logs_no_adversarial_term():
    obj = objective(tiny())
    assert obj.nets["generator"].generator.dense.in_features == P
    assert not any(k.startswith("embed.") for k in obj.nets["discriminator"].state_dict())
    assert obj.noise(8, 0) is None
    logs = obj.step(batch(), 0)
    assert "adversarial" not in logs


def test_noise_projection_and_adversarial_term_reach_their_parameters():
    obj = objective(tiny(noise_dim=3, projection_discriminator=True, adversarial_weight=0.5))
    gen, disc = obj.nets["generator"].generator, obj.nets["discriminator"]
    with torch.no_grad():
        gen.dense.weight[:, P:] = 0  # as after a warm start
    embed_before = {k: v.clone() for k, v in disc.state_dict().items() if k.startswith("embed.")}
    logs = obj.step(batch(), 0)
    assert torch.isfinite(logs["adversarial"]) and logs["adversarial"] > 0
    assert gen.dense.weight[:, P:].abs().sum() > 0  # the noise columns moved off zero
    after = disc.state_dict()
    assert any(not torch.equal(after[k], v) for k, v in embed_before.items())  # D's V was updated


def test_the_adversarial_weight_changes_the_generator_update():
    weights = []
    for w in (0.0, 1.0):
        obj = objective(tiny(projection_discriminator=True, adversarial_weight=w))
        obj.step(batch(), 0)
        weights.append(obj.nets["generator"].generator.to_image.weight.detach().clone())
    assert not torch.equal(*weights)


def test_pixel_pool_is_off_by_default_checked_and_reaches_the_generators_pixel_loss(monkeypatch):
    assert TrainConfig().pixel_pool == 1
    with pytest.raises(ValueError, match="pixel_pool"):
        TrainConfig(pixel_pool=0)
    with pytest.raises(ValueError, match="CP2Image option"):
        TrainConfig(model="vae", pixel_pool=2)
    seen = []
    original = objectives_module.losses.pixel_mse
    monkeypatch.setattr(objectives_module.losses, "pixel_mse",
                        lambda g, o, pool=1: seen.append(pool) or original(g, o, pool))
    logs = objective(tiny(pixel_pool=4)).step(batch(), 0)
    assert seen == [4]
    assert torch.isfinite(logs["mse"])


def test_noise_is_seeded_by_step_so_a_resumed_run_repeats_it():
    obj = objective(tiny(noise_dim=3))
    assert torch.equal(obj.noise(8, 5), obj.noise(8, 5))
    assert not torch.equal(obj.noise(8, 5), obj.noise(8, 6))


def test_warm_start_from_a_noise_free_export_draws_its_images_exactly(blob_data, tmp_path):
    first = Trainer(tiny(steps=2), blob_data, tmp_path / "first").run()
    old = CP2Image.from_pretrained(first.model_dir).eval()
    config = tiny(noise_dim=3, projection_discriminator=True, adversarial_weight=0.1)
    torch.manual_seed(0)
    obj = CP2ImageObjective(config, rt_mod.Runtime(device=torch.device("cpu")), old.config)
    obj.finalise(lambda net: net)
    initialise_from(obj, None, first.model_dir, checkpoint_name="checkpoint.safetensors")
    new = obj.nets["generator"].eval()
    z = torch.randn(5, len(old.feature_names))
    with torch.no_grad():
        for seed in range(2):
            noise = torch.randn(5, 3, generator=torch.Generator().manual_seed(seed))
            assert torch.equal(new(torch.cat([z, noise], dim=1)), old(z))


def test_widened_runs_resume_exactly(blob_data, tmp_path):
    opts = dict(noise_dim=3, projection_discriminator=True, adversarial_weight=0.1, steps=4, checkpoint_every=2)
    Trainer(tiny(**opts), blob_data, tmp_path / "a").run()
    Trainer(tiny(**{**opts, "steps": 2}), blob_data, tmp_path / "b").run()
    Trainer(tiny(**opts), blob_data, tmp_path / "b", resume=True).run()
    a, _ = ckpt.load_checkpoint(tmp_path / "a" / "checkpoint.safetensors")
    b, _ = ckpt.load_checkpoint(tmp_path / "b" / "checkpoint.safetensors")
    for k in a:
        if k.startswith(("net.", "ema.")):
            assert torch.equal(a[k], b[k]), k


def test_a_noise_run_exports_the_plain_generator_of_its_zero_noise_draw(blob_data, tmp_path):
    """Generation feeds zero noise, so the export drops the noise columns and loads strictly as a plain model."""
    run = Trainer(tiny(noise_dim=3), blob_data, tmp_path / "noise").run()
    model = CP2Image.from_pretrained(run.model_dir)
    assert model.generator.dense.in_features == P
    assert model.config.provenance["noise_input"]["noise_dim"] == 3
    tensors, _ = ckpt.load_checkpoint(tmp_path / "noise" / "checkpoint.safetensors")
    key = next(k for k in ("ema.module.generator.dense.weight", "net.generator.generator.dense.weight") if k in tensors)
    widened = tensors[key]  # the exported network: EMA weights when the run keeps them
    assert widened.shape[1] == P + 3
    assert torch.equal(model.generator.dense.weight, widened[:, :P])


# ----------------------------------------------------------------------------- block noise maps


def test_block_noise_is_off_by_default_and_adds_no_parameters():
    assert TrainConfig().block_noise is False
    obj = objective(tiny())
    assert not any(k.endswith("noise_strength") for k in obj.nets["generator"].state_dict())
    assert obj.noise_maps(8, 0) is None
    with pytest.raises(ValueError, match="CP2Image options"):
        TrainConfig(model="vae", block_noise=True)


def test_block_noise_maps_are_seeded_by_step_shared_by_edit_pairs_and_reach_their_strengths():
    obj = objective(tiny(block_noise=True, projection_discriminator=True, adversarial_weight=0.5))
    gen = obj.nets["generator"].generator
    maps = obj.noise_maps(8, 5)
    assert [m.shape[-1] for m in maps] == gen.noise_map_sizes() == [2, 4, 8, 16]  # 32 px, 4 blocks
    assert all(torch.equal(a, b) for a, b in zip(maps, obj.noise_maps(8, 5)))
    assert not torch.equal(maps[0], obj.noise_maps(8, 6)[0])
    paired = obj.noise_maps(8, 5, pairs=True)
    assert all(torch.equal(p[:8], p[8:]) and torch.equal(p[:8], m) for p, m in zip(paired, maps))
    strengths = [b.noise_strength for b in gen.blocks]
    assert all(float(s.detach().abs().sum()) == 0 for s in strengths)  # zero at construction: a warm start is exact
    obj.step(batch(), 0)
    assert all(float(s.detach().abs().sum()) > 0 for s in strengths)  # the maps reached every block


def test_block_noise_changes_the_image_only_through_its_maps():
    obj = objective(tiny(block_noise=True))
    gen = obj.nets["generator"].generator.eval()
    with torch.no_grad():
        for block in gen.blocks:
            block.noise_strength.fill_(0.5)
        z = torch.randn(3, P)
        zero = [torch.zeros_like(m) for m in gen.sample_noise_maps(3)]
        sampled = gen.sample_noise_maps(3, generator=torch.Generator().manual_seed(1))
        assert torch.allclose(gen(z, zero), gen(z), atol=1e-6)  # None = zero maps (the fused path too)
        assert not torch.allclose(gen(z, sampled), gen(z), atol=1e-3)
        with pytest.raises(ValueError, match="noise_maps"):
            gen(z, sampled[:2])


def test_a_block_noise_run_warm_starts_exactly_and_exports_its_zero_noise_draw(blob_data, tmp_path):
    first = Trainer(tiny(steps=2), blob_data, tmp_path / "first").run()
    old = CP2Image.from_pretrained(first.model_dir).eval()
    obj = CP2ImageObjective(tiny(block_noise=True), rt_mod.Runtime(device=torch.device("cpu")), old.config)
    obj.finalise(lambda net: net)
    initialise_from(obj, None, first.model_dir, checkpoint_name="checkpoint.safetensors")
    new = obj.nets["generator"].eval()
    z = torch.randn(5, len(old.feature_names))
    with torch.no_grad():
        maps = new.generator.sample_noise_maps(5, generator=torch.Generator().manual_seed(0))
        # zero strengths: any noise draws the source's image (layer by layer vs the fused path: round-off only)
        assert torch.allclose(new(z, maps), old(z), atol=1e-6)

    run = Trainer(tiny(steps=2, block_noise=True, init_from=str(first.model_dir)), blob_data, tmp_path / "bn").run()
    exported = CP2Image.from_pretrained(run.model_dir).eval()  # strict plain loader: no noise strengths
    assert "block_noise" in exported.config.provenance
    tensors, _ = ckpt.load_checkpoint(tmp_path / "bn" / "checkpoint.safetensors")
    prefix = "ema.module." if any(k.startswith("ema.") for k in tensors) else "net.generator."
    assert any(k.startswith(prefix) and k.endswith("noise_strength") for k in tensors)
    assert torch.equal(exported.generator.to_image.weight, tensors[prefix + "generator.to_image.weight"])


def test_diversity_weight_is_off_by_default_needs_noise_and_pooling_and_moves_the_noise_columns():
    assert TrainConfig().diversity_weight == 0.0
    with pytest.raises(ValueError, match="diversity_weight"):
        TrainConfig(diversity_weight=-1.0)
    with pytest.raises(ValueError, match="noise_dim ≥ 1"):
        TrainConfig(diversity_weight=0.1, pixel_pool=4)
    with pytest.raises(ValueError, match="pixel_pool ≥ 2"):
        TrainConfig(diversity_weight=0.1, noise_dim=3)
    columns = []
    for weight in (0.0, 1.0):
        obj = objective(tiny(noise_dim=3, pixel_pool=4, diversity_weight=weight))
        logs = obj.step(batch(), 0)
        columns.append(obj.nets["generator"].generator.dense.weight[:, P:].detach().clone())
        assert ("diversity" in logs) == (weight > 0)
    assert 0.0 <= logs["diversity"].item() <= 1.0
    assert not torch.equal(*columns)  # the term reaches the generator through its noise input


def test_the_second_draw_uses_other_noise_seeded_by_step(monkeypatch):
    obj = objective(tiny(noise_dim=3, pixel_pool=4, diversity_weight=1.0))
    seen = []
    original = objectives_module.losses.detail_diversity
    monkeypatch.setattr(objectives_module.losses, "detail_diversity",
                        lambda a, b, o, pool: seen.append((a.detach(), b.detach(), pool)) or original(a, b, o, pool))
    obj.step(batch(), 0)
    (first, second, pool), = seen
    assert pool == 4 and first.shape == second.shape and not torch.equal(first, second)


def test_detail_adversarial_weight_is_off_by_default_needs_pooling_and_trains_a_second_discriminator():
    assert TrainConfig().detail_adversarial_weight == 0.0
    assert "detail_discriminator" not in objective(tiny()).nets
    with pytest.raises(ValueError, match="detail_adversarial_weight must be"):
        TrainConfig(detail_adversarial_weight=-1.0)
    with pytest.raises(ValueError, match="pixel_pool ≥ 2"):
        TrainConfig(detail_adversarial_weight=0.1)
    obj = objective(tiny(pixel_pool=4, projection_discriminator=True, detail_adversarial_weight=1.0))
    detail_d = obj.nets["detail_discriminator"]
    before = {k: v.clone() for k, v in detail_d.state_dict().items() if k.startswith("embed.")}
    logs = obj.step(batch(), 0)
    assert {"detail_adversarial", "loss_d_detail", "d_accuracy_detail", "loss_d"} <= set(logs)
    assert torch.isfinite(logs["detail_adversarial"]) and logs["detail_adversarial"] > 0
    after = detail_d.state_dict()
    assert any(not torch.equal(after[k], v) for k, v in before.items())  # its projection V was updated


def test_the_detail_discriminator_sees_only_block_detail(monkeypatch):
    obj = objective(tiny(pixel_pool=4, detail_adversarial_weight=1.0))
    seen = []
    disc = obj.nets["detail_discriminator"]
    original_forward = disc.forward
    monkeypatch.setattr(disc, "forward", lambda x, *a: seen.append(x.detach()) or original_forward(x, *a))
    obj.wrapped["detail_discriminator"] = disc
    obj.step(batch(), 0)
    assert seen  # D's update and the generator's loss
    for images in seen:  # every 4 × 4 block of what it saw averages to zero
        assert torch.allclose(torch.nn.functional.avg_pool2d(images, 4), torch.zeros(()), atol=1e-6)


def test_the_detail_adversarial_weight_changes_the_generator_update():
    weights = []
    for w in (0.0, 1.0):
        obj = objective(tiny(pixel_pool=4, detail_adversarial_weight=w))
        obj.step(batch(), 0)
        weights.append(obj.nets["generator"].generator.to_image.weight.detach().clone())
    assert not torch.equal(*weights)


def test_a_warm_start_without_a_detail_discriminator_starts_it_fresh(blob_data, tmp_path):
    first = Trainer(tiny(steps=2, pixel_pool=4), blob_data, tmp_path / "first").run()
    source = CP2Image.from_pretrained(first.model_dir)
    torch.manual_seed(0)
    obj = CP2ImageObjective(tiny(pixel_pool=4, detail_adversarial_weight=0.5),
                            rt_mod.Runtime(device=torch.device("cpu")), source.config)
    obj.finalise(lambda net: net)
    fresh = {k: v.clone() for k, v in obj.nets["detail_discriminator"].state_dict().items()}
    initialise_from(obj, None, tmp_path / "first", checkpoint_name="checkpoint.safetensors")
    assert all(torch.equal(v, obj.nets["detail_discriminator"].state_dict()[k]) for k, v in fresh.items())
    z = torch.randn(3, len(source.feature_names))
    with torch.no_grad():  # the generator did come from the source
        assert torch.equal(obj.nets["generator"].eval()(z), source.eval()(z))

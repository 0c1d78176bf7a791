"""Noise input of the generator and the projection discriminator (issue 13: sharp, non-average cells).

Both are off by default; these tests pin what "off" means (the old networks, parameter for
parameter) and what "on" means (shapes, warm starts, the projection term's dependence on y).
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from cp2image.models.discriminator import Discriminator, EncoderConfig
from cp2image.models.generator import Generator, GeneratorConfig, with_noise_columns


def tiny_generator(noise_dim: int = 0, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(in_features=5, image_size=32, base_filters=4, kernel_size=3,
                                     upsample_mode="bilinear", noise_dim=noise_dim))


def tiny_discriminator(condition_dim: int = 0, seed: int = 0) -> Discriminator:
    torch.manual_seed(seed)
    return Discriminator(EncoderConfig(image_size=32, base_filters=4, kernel_size=3), condition_dim=condition_dim)


def test_the_default_generator_has_no_noise_input_and_the_same_parameters_as_before():
    g = tiny_generator()
    assert g.config.noise_dim == 0
    assert g.dense.in_features == 5
    with pytest.raises(ValueError, match="no noise input"):
        g.with_noise(torch.zeros(2, 5), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="noise_dim"):
        GeneratorConfig(in_features=5, noise_dim=-1)


def test_a_noise_generator_reads_features_then_noise_and_gives_zero_noise_to_feature_only_callers():
    g = tiny_generator(noise_dim=3).eval()
    assert g.dense.in_features == 5 + 3
    z, noise = torch.randn(4, 5), torch.randn(4, 3)
    with torch.no_grad():
        assert g(z).shape == (4, 3, 32, 32)
        assert torch.equal(g(z), g(torch.cat([z, torch.zeros(4, 3)], dim=1)))  # (B, p) → zero noise
        assert torch.equal(g(torch.cat([z, noise], dim=1)), g(g.with_noise(z, noise)))
        assert not torch.allclose(g(torch.cat([z, noise], dim=1)), g(z))  # the noise changes the image
    with pytest.raises(ValueError, match="expected inputs of 5 features"):
        g(torch.randn(4, 6))
    with pytest.raises(ValueError, match="noise must have shape"):
        g.with_noise(z, torch.randn(4, 2))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_warm_start_with_zero_noise_columns_draws_the_old_generator_exactly_for_any_noise(mode):
    old = tiny_generator(noise_dim=0, seed=1)
    new = tiny_generator(noise_dim=3, seed=2)
    state = old.state_dict()
    state["dense.weight"] = with_noise_columns(state["dense.weight"], 3)
    new.load_state_dict(state)
    old.train(mode == "train")
    new.train(mode == "train")
    z = torch.randn(6, 5)
    with torch.no_grad():  # eval mode without gradients is the fused inference path
        expected = old(z)
        for seed in range(3):
            noise = torch.randn(6, 3, generator=torch.Generator().manual_seed(seed))
            assert torch.equal(new(torch.cat([z, noise], dim=1)), expected)


def test_zero_noise_columns_still_get_gradients_so_training_can_grow_the_noise():
    g = tiny_generator(noise_dim=3)
    with torch.no_grad():
        g.dense.weight[:, 5:] = 0
    g(torch.cat([torch.randn(4, 5), torch.randn(4, 3)], dim=1)).mean().backward()
    assert g.dense.weight.grad[:, 5:].abs().sum() > 0


def test_the_default_discriminator_is_unconditional_with_the_old_parameters():
    d = tiny_discriminator()
    assert not any(k.startswith("embed.") for k in d.state_dict())
    with pytest.raises(ValueError, match="unconditional"):
        d(torch.rand(2, 3, 32, 32), torch.zeros(2, 5))


def test_projection_logit_is_the_unconditional_logit_plus_the_inner_product_of_vy_and_phi():
    d = tiny_discriminator(condition_dim=5).eval()
    x, y = torch.rand(3, 3, 32, 32), torch.randn(3, 5)
    with torch.no_grad():
        base, hidden = d(x)
        conditioned, _ = d(x, y)
        phi = hidden[-1].flatten(1)
        torch.testing.assert_close(conditioned, base + (d.embed(y) * phi).sum(dim=1))
        other, _ = d(x, y + 1.0)
    assert not torch.allclose(conditioned, other)  # the logit depends on the features y
    with pytest.raises(ValueError, match="y must have shape"):
        d(x, torch.randn(3, 4))


def test_the_projection_gets_gradients_from_the_logit():
    d = tiny_discriminator(condition_dim=5)
    logit, _ = d(torch.rand(4, 3, 32, 32), torch.randn(4, 5))
    logit.sum().backward()
    grads = [p.grad for name, p in d.named_parameters() if name.startswith("embed.")]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_configs_with_noise_round_trip_through_replace():
    base = GeneratorConfig(in_features=5)
    assert replace(base, noise_dim=4).noise_dim == 4 and base.noise_dim == 0

"""Loss terms and γ_i ramps against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from cp2image.training import losses
from cp2image.training.schedules import layer_weights, ramp_weight


def test_gamma_is_zero_before_its_delay_then_ramps_linearly():
    kw = dict(target=0.5, delay=100, ramp=200)
    assert ramp_weight(0, **kw) == 0.0
    assert ramp_weight(99, **kw) == 0.0
    assert ramp_weight(100, **kw) == 0.0
    assert ramp_weight(150, **kw) == pytest.approx(0.125)
    assert ramp_weight(200, **kw) == pytest.approx(0.25)
    assert ramp_weight(300, **kw) == pytest.approx(0.5)
    assert ramp_weight(10_000, **kw) == pytest.approx(0.5)


def test_zero_ramp_switches_on_at_the_delay():
    assert ramp_weight(9, target=2.0, delay=10, ramp=0) == 0.0
    assert ramp_weight(10, target=2.0, delay=10, ramp=0) == 2.0


def test_each_layer_has_its_own_delay():
    assert layer_weights(150, [1.0, 1.0, 1.0], [0, 100, 200], [100, 100, 100]) == [1.0, 0.5, 0.0]


def test_pixel_mse_is_mean_squared_difference():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.full((2, 3, 4, 4), 0.5)
    assert losses.pixel_mse(a, b).item() == pytest.approx(0.25)


def test_pooled_pixel_mse_compares_block_means_so_detail_placed_anywhere_in_a_block_costs_nothing():
    speck = torch.zeros(1, 1, 4, 4)
    speck[0, 0, 0, 0] = 1.0  # a punctum in the top-left 2 × 2 block
    moved = torch.zeros(1, 1, 4, 4)
    moved[0, 0, 1, 1] = 1.0  # the same punctum one pixel away, inside the same block
    assert losses.pixel_mse(speck, moved).item() == pytest.approx(2 / 16)
    assert losses.pixel_mse(speck, moved, pool=2).item() == 0.0
    other_block = torch.zeros(1, 1, 4, 4)
    other_block[0, 0, 3, 3] = 1.0
    assert losses.pixel_mse(speck, other_block, pool=2).item() == pytest.approx(2 * 0.25 ** 2 / 4)


def test_pooled_pixel_mse_averages_the_partial_blocks_of_an_undivided_size():
    a = torch.zeros(1, 1, 3, 3)
    b = torch.zeros(1, 1, 3, 3)
    b[0, 0, 2, 2] = 1.0  # alone in the bottom-right partial block (1 pixel)
    assert losses.pixel_mse(a, b, pool=2).item() == pytest.approx(1.0 / 4)  # 4 blocks; that one differs by 1
    with pytest.raises(ValueError, match="pool"):
        losses.pixel_mse(a, b, pool=0)


def test_hidden_loss_is_gamma_weighted_sum_of_layer_mses():
    orig = [torch.zeros(2, 4), torch.zeros(2, 3, 2, 2)]
    gen = [torch.ones(2, 4), torch.full((2, 3, 2, 2), 2.0)]
    per_layer = losses.hidden_layer_losses(orig, gen)
    assert [v.item() for v in per_layer] == [1.0, 4.0]
    assert losses.weighted_hidden_loss(per_layer, [0.5, 0.25]).item() == pytest.approx(0.5 + 1.0)
    assert losses.weighted_hidden_loss(per_layer, [0.0, 0.0]).item() == 0.0


def test_hidden_loss_rejects_layer_count_mismatch():
    with pytest.raises(ValueError, match="1 layer losses but 2 weights"):
        losses.weighted_hidden_loss([torch.ones(())], [1.0, 1.0])


def test_discriminator_bce_is_log2_twice_at_zero_logits():
    zero = torch.zeros(5)
    assert losses.discriminator_bce(zero, zero).item() == pytest.approx(2 * math.log(2))
    confident = losses.discriminator_bce(torch.full((5,), 20.0), torch.full((5,), -20.0))
    assert confident.item() < 1e-8


def test_lsgan_losses_vanish_at_their_targets():
    assert losses.lsgan_discriminator(torch.ones(4), torch.zeros(4)).item() == 0.0
    assert losses.lsgan_generator(torch.ones(4)).item() == 0.0
    assert losses.lsgan_discriminator(torch.zeros(4), torch.ones(4)).item() == pytest.approx(1.0)


def test_gaussian_kl_of_standard_normal_is_zero_and_of_shift_is_half_mu_squared():
    mu = torch.zeros(3, 8)
    assert losses.gaussian_kl(mu, torch.zeros(3, 8)).item() == pytest.approx(0.0)
    assert losses.gaussian_kl(torch.full((3, 8), 2.0), torch.zeros(3, 8)).item() == pytest.approx(8 * 2.0)


def test_block_detail_is_what_each_pixel_adds_to_its_block_mean():
    image = torch.tensor([[[[1.0, 3.0, 5.0, 5.0], [1.0, 3.0, 5.0, 5.0]]]])  # (1, 1, 2, 4): blocks of 2 × 2
    detail = losses.block_detail(image, 2)
    assert torch.allclose(detail, torch.tensor([[[[-1.0, 1.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0]]]]))
    with pytest.raises(ValueError, match="pool ≥ 2"):
        losses.block_detail(image, 1)


def test_detail_diversity_is_one_for_identical_draws_and_zero_once_they_differ_as_much_as_real_detail():
    original = torch.zeros(1, 1, 2, 2)
    original[..., 0, 0] = 1.0  # a speck: mean |detail| = (0.75 + 3 × 0.25) / 4 = 0.375
    speck = original.clone()
    moved = torch.zeros(1, 1, 2, 2)
    moved[..., 1, 1] = 1.0  # the same speck elsewhere in the block: |detail difference| = 0.5 on average
    assert losses.detail_diversity(speck, speck, original, 2).item() == pytest.approx(1.0)
    assert losses.detail_diversity(speck, moved, original, 2).item() == 0.0
    half = moved * 0.375  # differs by 0.5 × 0.375 = 0.1875 on average: half the real scale
    assert losses.detail_diversity(speck * 0.375, half, original, 2).item() == pytest.approx(0.5)


def test_detail_diversity_ignores_differences_in_block_means():
    original = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    flat = torch.full((2, 3, 8, 8), 0.2)
    brighter = torch.full((2, 3, 8, 8), 0.9)  # a different layout, the same (absent) detail
    assert losses.detail_diversity(flat, brighter, original, 4).item() == pytest.approx(1.0)

"""Texture statistics: where a structure sits does not matter, what it looks like does (issue 13).

The loss lets a generator draw puncta and fibres anywhere, as long as it draws as many, as
bright and as oriented as the real crop; it is off by default and, on, changes the update.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cp2image.training.config import TrainConfig
from cp2image.training.texture import TextureConfig, texture_loss, texture_statistics
from test_sharp_cell_training import batch, objective, tiny


def _canvas(size: int = 48) -> torch.Tensor:
    return torch.full((1, 3, size, size), 0.2)


def _with_spot(row: int, col: int) -> torch.Tensor:
    image = _canvas()
    image[:, :, row:row + 3, col:col + 3] = 0.9
    return image


def _stripes(direction: int, size: int = 48) -> torch.Tensor:
    """Diagonal stripes: direction +1 along one diagonal, −1 along the other."""
    i, j = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    wave = 0.5 + 0.3 * torch.sin(2 * torch.pi * (i + direction * j).float() / 8)
    return wave.expand(1, 3, size, size).clone()


def test_a_structure_moved_inside_the_crop_has_the_same_statistics():
    here, there = texture_statistics(_with_spot(10, 12)), texture_statistics(_with_spot(30, 25))
    assert torch.allclose(here.magnitudes, there.magnitudes, atol=1e-6)
    assert torch.allclose(here.correlations, there.correlations, atol=1e-6)
    assert texture_loss(_with_spot(30, 25), _with_spot(10, 12)) < 1e-8


def test_identical_images_cost_nothing_and_a_blurred_copy_costs_something():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(4, 3, 48, 48, generator=g)
    blurred = F.avg_pool2d(F.pad(image, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    assert texture_loss(image, image) == 0
    assert texture_loss(blurred, image) > 0.1
    # blurring removes detail: every octave's band-pass energy falls
    assert (texture_statistics(blurred).magnitudes[:, :3] < texture_statistics(image).magnitudes[:, :3]).all()


def test_puncta_read_as_more_concentrated_than_haze_of_the_same_energy():
    g = torch.Generator().manual_seed(1)
    haze = 0.5 + 0.05 * torch.randn(1, 3, 48, 48, generator=g)
    puncta = torch.full((1, 3, 48, 48), 0.5)
    for row, col in [(6, 6), (20, 30), (35, 12), (40, 40)]:
        puncta[:, :, row, col] = 1.0
    energy = slice(0, 3)
    peaks = slice(3, 6)
    s_haze, s_puncta = texture_statistics(haze).magnitudes, texture_statistics(puncta).magnitudes
    concentration_haze = s_haze[:, peaks] / s_haze[:, energy]
    concentration_puncta = s_puncta[:, peaks] / s_puncta[:, energy]
    assert (concentration_puncta > 1.5 * concentration_haze).all()


def test_fibres_along_the_two_diagonals_have_opposite_coherence():
    one, other = texture_statistics(_stripes(+1)), texture_statistics(_stripes(-1))
    coherence = slice(0, 3)  # the first octave's orientation coherence, one per channel
    assert (one.correlations[:, coherence] > 0.5).all()
    assert (other.correlations[:, coherence] < -0.5).all()


def test_the_loss_does_not_depend_on_the_brightness_scale_of_the_magnitudes():
    g = torch.Generator().manual_seed(2)
    original, generated = torch.rand(4, 3, 48, 48, generator=g), torch.rand(4, 3, 48, 48, generator=g) * 0.5
    cfg = TextureConfig(eps=1e-9)
    assert torch.isclose(texture_loss(generated, original, cfg), texture_loss(generated * 0.1, original * 0.1, cfg),
                         rtol=1e-3)


def test_bad_shapes_and_settings_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        texture_loss(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        texture_statistics(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="at least"):
        texture_statistics(torch.rand(1, 3, 8, 8), TextureConfig(scales=3))
    with pytest.raises(ValueError, match="scales"):
        TextureConfig(scales=0)


def test_the_texture_weight_is_off_by_default_checked_and_cp2image_only():
    assert TrainConfig().texture_weight == 0.0
    with pytest.raises(ValueError, match="texture_weight"):
        TrainConfig(texture_weight=-1.0)
    with pytest.raises(ValueError, match="CP2Image options"):
        TrainConfig(model="vae", texture_weight=0.1)


def test_the_texture_term_is_logged_and_changes_the_generator_update():
    assert "texture" not in objective(tiny()).step(batch(), 0)
    weights = []
    for w in (0.0, 1.0):
        obj = objective(tiny(texture_weight=w))
        logs = obj.step(batch(), 0)
        weights.append(obj.nets["generator"].generator.to_image.weight.detach().clone())
    assert torch.isfinite(logs["texture"]) and logs["texture"] > 0
    assert not torch.equal(*weights)

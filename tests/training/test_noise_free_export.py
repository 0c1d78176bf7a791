"""A generator trained with a noise input ships as the plain CP2Image that draws its zero-noise cells.

Generation never feeds noise, so the export drops the dense layer's noise columns: every loader
(strict `from_pretrained`, refinement, the NumPy path, the Hub) then reads it unchanged.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cp2image.models.cp2image import CP2Image, CP2ImageConfig
from cp2image.models.generator import Generator
from cp2image.training.noise_free import convert_folder, zero_noise_model, zero_noise_state

NAMES = ["a", "b", "c"]
NOISE = 4


def noise_model(seed: int = 0) -> CP2Image:
    """A tiny CP2Image whose generator reads 3 features + 4 noise inputs, with non-zero noise weights."""
    torch.manual_seed(seed)
    config = CP2ImageConfig(feature_names=NAMES, feature_mean=[1.0] * 3, feature_scale=[2.0] * 3, image_size=20,
                            base_filters=4, kernel_size=3, generator_channel_mults=[1.0, 2.0, 1.0, 0.5])
    model = CP2Image(config)
    model.generator = Generator(replace(config.generator_config(), noise_dim=NOISE))
    return model.eval()


def test_the_plain_export_draws_exactly_the_zero_noise_images():
    net = noise_model()
    profiles = np.random.default_rng(0).normal(1.0, 2.0, size=(6, 3))
    plain = zero_noise_model(net)
    assert plain.generator.dense.in_features == 3
    assert net.generator.dense.weight[:, 3:].abs().sum() > 0  # the dropped columns were not already zero
    np.testing.assert_array_equal(plain.generate(profiles, refine=False), net.generate(profiles, refine=False))
    assert plain.config.provenance["noise_input"]["noise_dim"] == NOISE


def test_a_model_without_noise_is_exported_unchanged_and_not_labelled():
    torch.manual_seed(1)
    config = CP2ImageConfig(feature_names=NAMES, feature_mean=[0.0] * 3, feature_scale=[1.0] * 3, image_size=20,
                            base_filters=4, kernel_size=3, generator_channel_mults=[1.0, 2.0, 1.0, 0.5])
    net = CP2Image(config).eval()
    plain = zero_noise_model(net)
    assert "noise_input" not in plain.config.provenance
    for key, value in net.state_dict().items():
        assert torch.equal(plain.state_dict()[key], value)


def test_a_folder_exported_with_noise_columns_converts_to_a_strictly_loadable_model(tmp_path):
    net = noise_model()
    source = tmp_path / "with-noise"
    source.mkdir()
    (source / "config.json").write_text(__import__("json").dumps(net.config.__dict__))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(source / "model.safetensors"))
    with pytest.raises(Exception):
        CP2Image.from_pretrained(source)  # the strict loader refuses the widened dense layer

    target = convert_folder(source, tmp_path / "plain")
    loaded = CP2Image.from_pretrained(target)
    profiles = np.random.default_rng(1).normal(1.0, 2.0, size=(4, 3))
    np.testing.assert_array_equal(loaded.generate(profiles, refine=False), net.generate(profiles, refine=False))


def test_a_dense_layer_narrower_than_the_features_is_refused():
    with pytest.raises(ValueError, match="2 input columns for 3 features"):
        zero_noise_state({"generator.dense.weight": torch.zeros(8, 2)}, 3)
    with pytest.raises(ValueError, match="not a CP2Image state"):
        zero_noise_state({}, 3)

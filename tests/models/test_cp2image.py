"""CP2Image: architecture size, generation contract and bad inputs (weight loading: tests/models/test_weights.py)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from cp2image.models import CP2Image, CP2ImageConfig, Discriminator, EncoderConfig, parameter_count
from cp2image.models.blocks import upsample_sizes
from cp2image.models.testing import tiny_model

NAMES = ["Nuclei_AreaShape_Area", "Nuclei_Intensity_MeanIntensity_DNA", "Cells_AreaShape_Area",
         "Cells_Intensity_MeanIntensity_Actin"]


def reference_models(p: int = 453) -> tuple[CP2Image, Discriminator]:
    names = [f"Cells_Feature_{i}" for i in range(p)]
    config = CP2ImageConfig(feature_names=names, feature_mean=[0.0] * p, feature_scale=[1.0] * p)
    return CP2Image(config), Discriminator(EncoderConfig(base_filters=32, kernel_size=5))


def test_reference_config_has_paper_parameter_count(capsys):
    generator, discriminator = reference_models()
    total = parameter_count(generator) + parameter_count(discriminator)
    print(f"reference G + D parameters: {total:,} (G {parameter_count(generator):,}, "
          f"D {parameter_count(discriminator):,}); paper: 1.32 M")
    assert abs(total - 1.32e6) / 1.32e6 <= 0.15


def test_generator_upsamples_through_four_blocks_to_68():
    assert upsample_sizes(68, 4) == [5, 9, 17, 34, 68]
    generator, _ = reference_models(p=10)
    assert len(generator.generator.blocks) == 4
    out = generator(torch.zeros(2, 10))
    assert out.shape == (2, 3, 68, 68)


def test_discriminator_has_five_spectrally_normalised_blocks():
    d = Discriminator(EncoderConfig(base_filters=8, kernel_size=3))
    assert len(d.trunk.blocks) == 5
    assert all(hasattr(block.conv, "parametrizations") for block in d.trunk.blocks)
    logit, hidden = d(torch.rand(4, 3, 68, 68))
    assert logit.shape == (4,)
    assert [h.shape[-1] for h in hidden] == [34, 17, 8, 4, 2]


def test_generate_returns_uint8_images_of_configured_shape():
    model = tiny_model(NAMES, seed=1)
    frame = pd.DataFrame(np.random.default_rng(0).standard_normal((5, 4)), columns=NAMES)
    images = model.generate(frame)
    assert images.dtype == np.uint8 and images.shape == (5, 3, 68, 68)


def test_generate_matches_features_by_name_not_position():
    model = tiny_model(NAMES, seed=1)
    frame = pd.DataFrame(np.random.default_rng(0).standard_normal((3, 4)), columns=NAMES)
    shuffled = frame[NAMES[::-1]].assign(Metadata_Extra="ignored", Cells_Unused=1.0)
    np.testing.assert_array_equal(model.generate(frame), model.generate(shuffled))
    np.testing.assert_array_equal(model.generate(frame), model.generate(frame.to_numpy()))


def test_generate_depends_on_the_profile():
    model = tiny_model(NAMES, seed=1)
    x = np.zeros((2, 4))
    x[1, 0] = 3.0
    images = model.generate(x)
    assert np.abs(images[0].astype(int) - images[1].astype(int)).max() > 0


def test_generate_applies_stored_normalisation():
    plain = tiny_model(NAMES, seed=2)
    shifted = tiny_model(NAMES, seed=2, feature_mean=[100.0, 0, 0, 0], feature_scale=[10.0, 1, 1, 1])
    z = np.array([[0.5, -1.0, 0.2, 0.0]])
    raw = z.copy()
    raw[0, 0] = 100.0 + 10.0 * 0.5
    np.testing.assert_array_equal(plain.generate(z), shifted.generate(raw))


def test_missing_features_are_listed():
    model = tiny_model(NAMES)
    frame = pd.DataFrame(np.zeros((2, 2)), columns=NAMES[:2])
    with pytest.raises(ValueError, match=r"lack 2 of the model's 4 features: Cells_AreaShape_Area"):
        model.generate(frame)


def test_wrong_feature_count_array_is_rejected():
    model = tiny_model(NAMES)
    with pytest.raises(ValueError, match=r"has 3 columns but the model expects 4"):
        model.generate(np.zeros((2, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_rejected(bad):
    model = tiny_model(NAMES)
    x = np.zeros((3, 4))
    x[1, 2] = bad
    with pytest.raises(ValueError, match=r"NaN/inf value\(s\) in 1 row\(s\).*Cells_AreaShape_Area"):
        model.generate(x)


def test_inputs_within_range_do_not_warn():
    model = tiny_model(NAMES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.generate(np.full((1, 4), 9.9))


def test_generate_batches_give_same_result_as_one_batch():
    model = tiny_model(NAMES, seed=3)
    x = np.random.default_rng(1).standard_normal((7, 4))
    small, large = model.generate(x, batch_size=2), model.generate(x, batch_size=64)
    # different batch sizes may pick different conv kernels: at most one grey level apart
    assert np.abs(small.astype(int) - large.astype(int)).max() <= 1


def test_generate_restores_training_mode():
    model = tiny_model(NAMES).train()
    model.generate(np.zeros((1, 4)))
    assert model.training


def test_config_with_inconsistent_statistics_is_rejected():
    with pytest.raises(ValueError, match=r"feature_mean has 1 entries for 2 features"):
        CP2ImageConfig(feature_names=["a", "b"], feature_mean=[0.0], feature_scale=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"feature_scale entries must be > 0"):
        CP2ImageConfig(feature_names=["a"], feature_mean=[0.0], feature_scale=[0.0])


def test_tiny_model_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = tiny_model(NAMES, seed=5)
    after = torch.rand(1)
    b = tiny_model(NAMES, seed=5)
    assert torch.equal(before, after)
    x = np.ones((1, 4))
    np.testing.assert_array_equal(a.generate(x), b.generate(x))


def test_the_model_states_its_feature_space_and_standardises_with_it():
    model = tiny_model(NAMES, seed=5, feature_mean=[100.0, 0.5, 400.0, 0.2], feature_scale=[10.0, 0.1, 40.0, 0.05])
    stats = model.feature_statistics
    assert stats.names == tuple(NAMES) and stats.clip_sigma == model.config.clip_sigma
    np.testing.assert_array_equal(stats.mean, [100.0, 0.5, 400.0, 0.2])
    np.testing.assert_array_equal(stats.scale, [10.0, 0.1, 40.0, 0.05])
    raw = np.array([[110.0, 0.3, 400.0, 0.3]])
    np.testing.assert_allclose(model.normalise(raw), [[1.0, -2.0, 0.0, 2.0]], rtol=1e-6)
    stats.mean[0] = -1.0  # a copy: the caller cannot change what the model reads
    assert model.feature_statistics.mean[0] == 100.0

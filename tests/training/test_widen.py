"""A trained generator widened to more base filters draws the same cells, and its copies can still diverge.

Widening (Net2Wider) lets a 32-filter generator, the paper's width, start from the bundled
16-filter weights instead of from scratch.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from cp2image.models.cp2image import CP2Image, CP2ImageConfig
from cp2image.models.generator import Generator
from cp2image.training.widen import WidenConfig, widen_folder, widen_model

NAMES = ["a", "b", "c", "d"]


def trained_looking_model(seed: int = 0) -> CP2Image:
    """A tiny CP2Image whose batch norms carry non-trivial affine parameters and running statistics."""
    torch.manual_seed(seed)
    config = CP2ImageConfig(feature_names=NAMES, feature_mean=[0.0] * 4, feature_scale=[1.0] * 4, image_size=20,
                            base_filters=4, kernel_size=3, generator_channel_mults=[1.0, 2.0, 1.0, 0.5])
    net = CP2Image(config)
    for module in net.generator.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.3)
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_the_widened_generator_draws_the_same_images_in_eval_and_in_training_mode():
    net = trained_looking_model()
    wide = widen_model(net)
    z = torch.randn(16, len(NAMES))
    with torch.no_grad():
        torch.testing.assert_close(wide.generator(z), net.generator(z), atol=1e-5, rtol=0)
        net.generator.train(), wide.generator.train()  # batch statistics: copies share them
        torch.testing.assert_close(wide.generator(z), net.generator(z), atol=1e-5, rtol=0)


def test_widening_by_two_doubles_every_hidden_layer_and_records_where_it_came_from():
    net = trained_looking_model()
    wide = widen_model(net, WidenConfig(factor=2))
    assert wide.config.base_filters == 2 * net.config.base_filters
    narrow_convs = [b.conv.out_channels for b in net.generator.blocks]
    assert [b.conv.out_channels for b in wide.generator.blocks] == [2 * c for c in narrow_convs]
    assert wide.generator.to_image.out_channels == 3
    assert wide.config.provenance["widened"]["from_base_filters"] == net.config.base_filters


def test_a_factor_of_three_preserves_the_function_too():
    net = trained_looking_model(seed=3)
    wide = widen_model(net, WidenConfig(factor=3, epsilon=0.05))
    z = torch.randn(8, len(NAMES))
    with torch.no_grad():
        torch.testing.assert_close(wide.generator(z), net.generator(z), atol=1e-5, rtol=0)


def test_the_copies_read_different_weights_that_add_up_to_the_original():
    net = trained_looking_model()
    wide = widen_model(net, WidenConfig(epsilon=0.05))
    narrow, widened = net.generator.to_image.weight, wide.generator.to_image.weight
    c = narrow.shape[1]
    first, second = widened[:, :c], widened[:, c:]
    assert not torch.equal(first, second)
    torch.testing.assert_close(first + second, narrow, atol=1e-6, rtol=0)


def _copy_gap_after_one_step(epsilon: float) -> float:
    """How far channel 0 and its copy's incoming weights are apart after one gradient step."""
    wide = widen_model(trained_looking_model(), WidenConfig(epsilon=epsilon)).generator.train()
    optimiser = torch.optim.SGD(wide.parameters(), lr=0.5)
    target = torch.rand(8, 3, 20, 20)
    loss = (wide(torch.randn(8, len(NAMES))) - target).pow(2).mean()
    loss.backward()
    optimiser.step()
    weight = wide.blocks[-1].conv.weight  # its output channels are the copied ones the last layer reads
    half = weight.shape[0] // 2
    return float((weight[:half] - weight[half:]).detach().abs().max())


def test_the_perturbation_lets_copies_learn_different_things_where_exact_copies_would_stay_twins():
    assert _copy_gap_after_one_step(epsilon=0.0) == 0.0
    assert _copy_gap_after_one_step(epsilon=0.05) > 0.0


def test_a_widened_folder_loads_strictly_and_keeps_the_parts_that_do_not_depend_on_width(tmp_path):
    net = trained_looking_model()
    source = tmp_path / "narrow"
    net.save_pretrained(source)
    (source / "feature_coupling.safetensors").write_bytes(b"coupling")
    target = widen_folder(source, tmp_path / "wide")
    loaded = CP2Image.from_pretrained(str(target))
    assert loaded.config.base_filters == 2 * net.config.base_filters
    assert (target / "feature_coupling.safetensors").read_bytes() == b"coupling"
    z = torch.randn(4, len(NAMES))
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval().generator(z), net.generator(z), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [dict(factor=1), dict(factor=2.0), dict(epsilon=-0.1)])
def test_a_widening_that_would_not_widen_is_refused(bad):
    with pytest.raises(ValueError):
        WidenConfig(**bad)


def test_a_generator_with_noise_inputs_is_refused_with_the_way_out():
    net = trained_looking_model()
    net.generator = Generator(replace(net.config.generator_config(), noise_dim=2))
    with pytest.raises(ValueError, match="noise_free"):
        widen_model(net)

"""Inference carries each exact 2× up-sampling into the next convolution; the images stay the model's.

The fused path (`upsample2x_conv2d`) runs only in eval mode without gradients. It must give
the layer-by-layer network's output (nn.Conv2d → BatchNorm → LeakyReLU → Upsample, the path
training differentiates) up to float round-off, follow weight changes, and leave the saved
weights alone.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cp2image.assets import bundled_model_dir
from cp2image.models.blocks import same_conv2d, upsample2x_conv2d
from cp2image.models.generator import Generator, GeneratorConfig, unfused_upsampling
from cp2image.models.testing import with_trained_statistics




def _layer_by_layer(net: Generator, z: torch.Tensor) -> torch.Tensor:
    """The training path's function in eval mode: gradients on, nothing folded or fused."""
    with torch.enable_grad():
        return net(z).detach()


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("kernel_size", [3, 5, 7])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 5), (17, 17), (6, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("padding_mode", ["zeros", "replicate"])
def test_fused_upsample_conv_equals_upsample_then_conv(mode, kernel_size, size, channels_last, padding_mode):
    g = torch.Generator().manual_seed(kernel_size * 100 + size[0] * 10 + size[1])
    x = torch.randn(3, 4, *size, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(5, 4, kernel_size, kernel_size, generator=g)
    bias = torch.randn(5, generator=g)
    conv = torch.nn.Conv2d(4, 5, kernel_size, padding=kernel_size // 2, padding_mode=padding_mode)
    conv.weight.data, conv.bias.data = weight, bias
    with torch.no_grad():
        expected = conv(F.interpolate(x, size=(2 * size[0], 2 * size[1]), mode=mode))  # torch's own margin
    got = upsample2x_conv2d(x, weight, bias, mode=mode, padding_mode=padding_mode)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("config", [
    # the bundled models' architecture: 5 → 9 → 17 → 34 → 68, the last two doublings fused
    GeneratorConfig(in_features=11, image_size=68, base_filters=16, kernel_size=5, upsample_mode="bilinear"),
    # the default nearest mode at another size (3 → 5 → 10 → 20: two doublings)
    GeneratorConfig(in_features=7, image_size=20, base_filters=4, kernel_size=3, channel_mults=[1, 2, 1, 0.5]),
    # no batch norm: the convolutions keep their own bias
    GeneratorConfig(in_features=5, image_size=24, base_filters=4, kernel_size=5, batch_norm=False,
                    upsample_mode="bilinear"),
    # edge-replicating margins (padding_mode "replicate"): the fused phases need no margin correction
    GeneratorConfig(in_features=11, image_size=68, base_filters=8, kernel_size=5, upsample_mode="bilinear",
                    padding_mode="replicate"),
    GeneratorConfig(in_features=7, image_size=20, base_filters=4, kernel_size=3, channel_mults=[1, 2, 1, 0.5],
                    padding_mode="replicate"),
], ids=["bundled-architecture", "nearest-20px", "no-batch-norm", "replicate-68px", "replicate-nearest-20px"])
def test_generator_inference_equals_the_layer_by_layer_network(config):
    net = with_trained_statistics(Generator(config)).eval()
    z = torch.randn(6, config.in_features, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        fused = net(z)
        with unfused_upsampling(net):
            unfused = net(z)
    expected = _layer_by_layer(net, z)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=2e-6)
    torch.testing.assert_close(unfused, expected, rtol=1e-5, atol=2e-6)


def test_every_exact_doubling_is_fused_and_no_other():
    config = GeneratorConfig(in_features=7, image_size=68, base_filters=4, kernel_size=5, upsample_mode="bilinear")
    net = with_trained_statistics(Generator(config)).eval()
    calls: list[int] = []
    for i, block in enumerate(net.blocks):
        block.up.register_forward_hook(lambda module, args, out, i=i: calls.append(i))
    with torch.no_grad():
        net(torch.randn(2, 7))
    assert calls == [0, 1]  # 5 → 9 and 9 → 17 run as up-samplings; 17 → 34 and 34 → 68 are fused
    calls.clear()
    with torch.no_grad(), unfused_upsampling(net):
        net(torch.randn(2, 7))
    assert calls == [0, 1, 2, 3] and net.fuse_upsampling  # the switch is restored on exit


def test_fused_path_follows_weight_changes():
    config = GeneratorConfig(in_features=7, image_size=20, base_filters=4, kernel_size=5, upsample_mode="bilinear")
    net = with_trained_statistics(Generator(config)).eval()
    z = torch.randn(3, 7)
    with torch.no_grad():
        net(z)  # builds the cached fused weights
        net.to_image.weight.mul_(-1.5)
        net.blocks[-1].conv.weight.add_(0.1)
        net.blocks[-1].norm.running_var.mul_(2.0)
        torch.testing.assert_close(net(z), _layer_by_layer(net, z), rtol=1e-5, atol=2e-6)
    other = with_trained_statistics(Generator(config), seed=5).eval()
    net.load_state_dict(other.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(net(z), _layer_by_layer(other, z), rtol=1e-5, atol=2e-6)


def test_weights_made_under_inference_mode_are_used_not_a_stale_cache():
    config = GeneratorConfig(in_features=7, image_size=20, base_filters=4, kernel_size=5, upsample_mode="bilinear")
    torch.manual_seed(0)
    net = with_trained_statistics(Generator(config)).eval()
    z = torch.randn(3, 7)
    with torch.inference_mode():
        before = net(z)  # caches the fused weights of the current parameters
        net.to_image.weight = torch.nn.Parameter(torch.randn_like(net.to_image.weight))  # no version counter
        net.blocks[-1].conv.weight = torch.nn.Parameter(torch.randn_like(net.blocks[-1].conv.weight))
        got = net(z)
        with unfused_upsampling(net):
            expected = net(z)
    # unit-variance weights make float32 round-off of the two paths reach ~8e-6 on [0, 1] outputs (1 seed
    # in 10 failed 2e-6); a stale cache would differ by the old weights' whole effect, ~1e-1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=5e-5)
    assert (before - got).abs().max() > 1e-2  # what a stale cache would give: the check above tells it apart


def test_training_keeps_the_differentiable_path_and_the_saved_keys():
    config = GeneratorConfig(in_features=7, image_size=20, base_filters=4, kernel_size=3, upsample_mode="bilinear")
    net = with_trained_statistics(Generator(config))
    keys = set(net.state_dict())
    calls: list[int] = []
    for block in net.blocks:
        block.up.register_forward_hook(lambda *_: calls.append(1))
    out = net.train()(torch.randn(4, 7))
    out.mean().backward()
    assert len(calls) == len(net.blocks)  # every up-sampling ran as a layer
    assert all(p.grad is not None for p in net.parameters())
    with torch.no_grad():
        net.eval()(torch.randn(2, 7))
    assert set(net.state_dict()) == keys  # the fused weights are caches, not parameters or buffers


@pytest.mark.parametrize("name", ["cp2image-sim", "cp2image-bbbc021-real"])
def test_bundled_models_draw_the_same_uint8_images(name):
    """Against the layer-by-layer path: float round-off moves at most one grey level, on about
    1 pixel in 100,000 (measured on 2,048 images of each model); allowed here: 1 in 10,000."""
    from cp2image.models import CP2Image

    folder = bundled_model_dir(name)
    if not (folder / "model.safetensors").exists():
        pytest.skip(f"bundled model {name} absent")
    model = CP2Image.from_pretrained(folder)
    z = np.random.default_rng(0).standard_normal((256, model.config.n_features)).astype(np.float32)
    fused = model.generate_from_normalised(z)
    with unfused_upsampling(model):
        unfused = model.generate_from_normalised(z)
    diff = np.abs(fused.astype(np.int16) - unfused.astype(np.int16))
    assert diff.max() <= 1
    assert np.count_nonzero(diff) <= diff.size // 10_000


@pytest.mark.parametrize("padding_mode", ["zeros", "replicate"])
def test_same_conv2d_fills_the_margin_as_nn_conv2d_does(padding_mode):
    conv = torch.nn.Conv2d(3, 2, 5, padding=2, padding_mode=padding_mode)
    x = torch.randn(2, 3, 7, 6)
    with torch.no_grad():
        torch.testing.assert_close(same_conv2d(x, conv.weight, conv.bias, padding_mode), conv(x))


def test_a_replicate_padded_generator_sees_no_border_in_a_flat_input():
    """A constant feature map stays constant through replicate-padded convolutions, so the image
    has no frame; zero padding darkens or brightens the margin (the frame of the bundled models)."""
    def flat_image(padding_mode: str) -> torch.Tensor:
        config = GeneratorConfig(in_features=3, image_size=20, base_filters=4, kernel_size=5, batch_norm=False,
                                 padding_mode=padding_mode)
        net = Generator(config).eval()
        with torch.no_grad():
            net.dense.weight.zero_()
            net.dense.bias.fill_(0.5)  # every grid cell of every channel equal: a flat input map
            return net(torch.zeros(1, 3))[0]
    replicate, zeros = flat_image("replicate"), flat_image("zeros")
    assert float(replicate.amax(dim=(1, 2)).sub(replicate.amin(dim=(1, 2))).max()) < 1e-6
    assert float(zeros.amax(dim=(1, 2)).sub(zeros.amin(dim=(1, 2))).max()) > 1e-3


def test_one_cache_serves_each_padding_mode_with_its_own_margin_correction():
    """A cached fused layer asked for the other padding mode rebuilds its entry (replicate needs no margin kernels)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 5, 5, padding=2)
    x = torch.rand(2, 4, 9, 9)
    cache: dict = {}
    with torch.no_grad():
        for padding_mode in ("zeros", "replicate", "zeros"):
            got = upsample2x_conv2d(x, conv.weight, conv.bias, mode="bilinear", cache=cache, padding_mode=padding_mode)
            want = same_conv2d(F.interpolate(x, size=(18, 18), mode="bilinear"), conv.weight, conv.bias, padding_mode)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
            assert (cache["entry"]["margins"] is None) == (padding_mode == "replicate")

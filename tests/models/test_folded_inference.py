"""Inference folds batch norm into the up-sampling convolutions; the numbers stay the model's.

The fold is used only in eval mode without gradients, is rebuilt when the weights or
statistics change, and never enters the saved weights.
"""
from __future__ import annotations

import torch

from cp2image.models.blocks import UpBlock
from cp2image.models.generator import Generator, GeneratorConfig
from cp2image.models.testing import with_trained_statistics




def _unfolded(block: UpBlock, x: torch.Tensor) -> torch.Tensor:
    return block.up(block.act(block.norm(block.conv(x))))


def test_folded_block_equals_conv_then_norm_in_eval():
    block = with_trained_statistics(UpBlock(6, 4, kernel_size=5, out_size=18, mode="bilinear")).eval()
    x = torch.randn(3, 6, 9, 9)
    with torch.no_grad():
        expected = _unfolded(block, x)
        got = block(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_fold_follows_weight_changes_and_training_mode_is_untouched():
    block = with_trained_statistics(UpBlock(6, 4, kernel_size=3, out_size=10)).eval()
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        block(x)  # builds the cached fold
        block.conv.weight.mul_(2.0)
        block.norm.running_mean.add_(1.0)
        torch.testing.assert_close(block(x), _unfolded(block, x), rtol=1e-5, atol=1e-5)
    block.train()
    torch.manual_seed(1)
    out = block(x)  # batch statistics, gradients flow as before
    out.sum().backward()
    assert block.conv.weight.grad is not None and block.norm.weight.grad is not None


def test_generator_eval_output_and_saved_keys_unchanged_by_the_fold():
    config = GeneratorConfig(in_features=7, image_size=20, base_filters=4, kernel_size=3, upsample_mode="bilinear")
    net = with_trained_statistics(Generator(config)).eval()
    keys = set(net.state_dict())
    z = torch.randn(5, 7)
    with torch.no_grad():
        folded = net(z)
    with torch.enable_grad():
        plain = net(z)  # gradients on: the unfolded path
    torch.testing.assert_close(folded, plain.detach(), rtol=1e-5, atol=1e-5)
    assert set(net.state_dict()) == keys

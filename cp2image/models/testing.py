"""Small untrained models for tests and development (no trained weights needed).

Other parts of the package (analysis, app, evaluation) test against these so their
tests are fast and do not depend on the bundled weights.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from cp2image.channels import CHANNELS, CROP_SIZE
from cp2image.models.cp2image import CP2Image, CP2ImageConfig


def tiny_model(
    feature_names: Sequence[str],
    seed: int = 0,
    *,
    image_size: int = CROP_SIZE,
    feature_mean: Sequence[float] | None = None,
    feature_scale: Sequence[float] | None = None,
    base_filters: int = 4,
) -> CP2Image:
    """A seeded, untrained CP2Image (~few k parameters) in eval mode.

    Same architecture family as the real model (dense → 4 up-sampling blocks), so
    shapes, dtypes, validation and save/load behave exactly like a trained one; the
    images are not meaningful but do depend on the inputs. Global RNG state is untouched.
    """
    names = list(feature_names)
    mean = list(feature_mean) if feature_mean is not None else [0.0] * len(names)
    scale = list(feature_scale) if feature_scale is not None else [1.0] * len(names)
    config = CP2ImageConfig(
        feature_names=names, feature_mean=[float(m) for m in mean], feature_scale=[float(s) for s in scale],
        channels=list(CHANNELS), image_size=image_size, base_filters=base_filters, kernel_size=3,
        provenance={"source": "cp2image.models.testing.tiny_model", "seed": int(seed), "trained": False},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CP2Image(config)
        # Randomise batch-norm running statistics a little so eval-mode outputs vary with the input.
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.fill_(0.1)
    return model.eval()


def with_trained_statistics(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm2d non-trivial running statistics and affine parameters, as after training.

    Tests of folded/fused inference need them: with fresh statistics (mean 0, var 1,
    weight 1, bias 0) folding a batch norm is nearly the identity and proves little.
    """
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return net

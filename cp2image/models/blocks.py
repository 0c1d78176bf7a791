"""Building blocks shared by every model: up-sampling and down-sampling conv blocks.

The generator of CP2Image, the decoder of the VAE baselines and the LSGAN generator
are all `UpBlock` stacks; the discriminator and the VAE encoder are `DownBlock`
stacks. Keeping one definition means the baselines of Table 1 differ from
CP2Image only in what goes in and which losses train them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LEAKY_SLOPE = 0.2


def upsample_sizes(image_size: int, n_blocks: int) -> list[int]:
    """Spatial sizes from the dense layer's grid up to `image_size`, halving with ceil.

    68 with 4 blocks gives [5, 9, 17, 34, 68]: each block up-samples to the next size,
    so any crop size works without cropping or padding tricks.
    """
    if image_size < 2 ** n_blocks:
        raise ValueError(f"image_size {image_size} is too small for {n_blocks} up-sampling blocks")
    sizes = [int(image_size)]
    for _ in range(n_blocks):
        sizes.insert(0, math.ceil(sizes[0] / 2))
    return sizes


def pooled_size(image_size: int, n_blocks: int) -> int:
    """Spatial size after `n_blocks` 2×2 poolings (floor, as AvgPool2d does)."""
    size = int(image_size)
    for _ in range(n_blocks):
        size //= 2
    if size < 1:
        raise ValueError(f"image_size {image_size} is too small for {n_blocks} pooling blocks")
    return size


def scaled_channels(base_filters: int, multipliers: list[float] | tuple[float, ...]) -> list[int]:
    """Channel counts `base_filters × m`, at least 1 each."""
    return [max(1, int(round(base_filters * m))) for m in multipliers]


class UpBlock(nn.Module):
    """conv(k) → batch norm → LeakyReLU → up-sample to `out_size` (one generator block)."""

    def __init__(self, in_ch: int, out_ch: int, *, kernel_size: int, out_size: int,
                 batch_norm: bool = True, mode: str = "nearest") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
        self.norm = nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity()
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        self.up = nn.Upsample(size=(out_size, out_size), mode=mode)
        self._folded: dict[str, object] = {}  # inference-only cache, never saved (see folded_conv_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not torch.is_grad_enabled() and _foldable(self.norm):
            # inference: batch norm with running statistics is an affine map per channel, so it
            # folds into the convolution (one pass less); training and gradients take the path below
            weight, bias = folded_conv_norm(self.conv, self.norm, self._folded)
            y = F.leaky_relu(F.conv2d(x, weight, bias, padding=self.conv.padding), LEAKY_SLOPE, inplace=True)
            return self.up(y)
        return self.up(self.act(self.norm(self.conv(x))))  # (B, out_ch, out_size, out_size)


def _foldable(norm: nn.Module) -> bool:
    return isinstance(norm, nn.BatchNorm2d) and norm.running_mean is not None and norm.running_var is not None


def folded_conv_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d, cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``norm(conv(x))`` as one convolution, for eval mode without gradients.

    BatchNorm in eval mode is y = (x − mean) · γ / √(var + ε) + β per channel, so
    conv → norm equals a convolution with weight·s and bias (b − mean)·s + β, s = γ / √(var + ε).
    The result is cached and rebuilt whenever any source tensor changes (training steps,
    ``load_state_dict``, ``.to()``), keyed by each tensor's storage, version and dtype; it is
    a plain attribute, not a parameter or buffer, so the weight format is unchanged.
    """
    sources = (conv.weight, conv.bias, norm.weight, norm.bias, norm.running_mean, norm.running_var)
    try:
        key = tuple(None if t is None else (t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
    except RuntimeError:  # weights created under inference_mode have no version counter: never cache
        key = None
    if key is None or cache.get("key") != key:
        with torch.no_grad():
            scale = torch.rsqrt(norm.running_var + norm.eps)
            if norm.weight is not None:
                scale = scale * norm.weight
            shift = -norm.running_mean * scale
            if conv.bias is not None:
                shift = shift + conv.bias * scale
            if norm.bias is not None:
                shift = shift + norm.bias
            weight = (conv.weight * scale.reshape(-1, 1, 1, 1)).contiguous(memory_format=torch.channels_last)
        cache.clear()
        cache.update(key=key, weight=weight, bias=shift)
    return cache["weight"], cache["bias"]


class DownBlock(nn.Module):
    """conv(k) → batch norm → LeakyReLU → 2×2 average pooling (one discriminator block).

    `spectral=True` wraps the convolution in spectral normalisation (Miyato et al. 2018),
    which the paper adds to stabilise discriminator training.
    """

    def __init__(self, in_ch: int, out_ch: int, *, kernel_size: int, spectral: bool,
                 batch_norm: bool = True) -> None:
        super().__init__()
        conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
        self.conv = spectral_norm(conv) if spectral else conv
        self.norm = nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity()
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.norm(self.conv(x))))  # (B, out_ch, H // 2, W // 2)


def parameter_count(module: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; spectral-norm power-iteration vectors are buffers."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

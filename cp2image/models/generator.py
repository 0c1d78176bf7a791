"""The CP2Image generator: a vector → dense layer → 4 up-sampling conv blocks → image.

Used unchanged as the VAE decoder (input: latent code) and the LSGAN generator
(input: noise); only CP2Image feeds it CellProfiler features.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cp2image.models.blocks import (LEAKY_SLOPE, UpBlock, same_conv2d, scaled_channels, tensors_key,
                                    upsample2x_conv2d, upsample_sizes)
from cp2image.models.padding import check_padding_mode


@dataclass
class GeneratorConfig:
    """Shape of a generator; every field lands in the saved config."""

    in_features: int  # length of the input vector (p CellProfiler features, or latent size)
    image_size: int = 68  # output edge in pixels (the paper's d)
    out_channels: int = 3  # DNA, tubulin, actin
    base_filters: int = 32  # the reference config's base filter count
    kernel_size: int = 5  # the reference config's convolution kernel
    # channels = base_filters × m: first entry for the dense layer's grid, then one per block
    channel_mults: list[float] = field(default_factory=lambda: [1.0, 2.0, 2.0, 1.0, 0.5])
    batch_norm: bool = True  # the paper uses batch norm throughout
    upsample_mode: str = "nearest"  # "nearest" or "bilinear"
    # extra inputs appended to the features: with an adversarial loss, N(0, 1) noise here lets one profile
    # give many sharp cells (fibres, neighbours) instead of their pixel mean; 0 → the paper's generator
    noise_dim: int = 0
    # per-pixel noise maps added in every up-sampling block (UpBlock.noise_strength), so texture that a profile
    # does not fix (puncta, fibres) can be sampled rather than averaged; None maps draw the zero-noise image
    block_noise: bool = False
    # margin of every convolution: "zeros" (the paper's) or "replicate" (no frame at the crop edge; blocks.py)
    padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        if self.noise_dim < 0:
            raise ValueError(f"noise_dim must be ≥ 0, got {self.noise_dim}")
        check_padding_mode(self.padding_mode)


class Generator(nn.Module):
    """(B, in_features) → (B, out_channels, image_size, image_size) in [0, 1] (sigmoid).

    With `noise_dim` > 0 the dense layer reads in_features + noise_dim columns: features, then
    noise. A (B, in_features) input gets zero noise (the deterministic draw every caller that
    knows nothing of noise sees); a (B, in_features + noise_dim) input carries its own noise.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        n_blocks = len(config.channel_mults) - 1
        if n_blocks < 1:
            raise ValueError("channel_mults needs at least two entries (dense grid + one block)")
        if config.kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {config.kernel_size}")
        sizes = upsample_sizes(config.image_size, n_blocks)
        channels = scaled_channels(config.base_filters, config.channel_mults)
        self.grid = (channels[0], sizes[0], sizes[0])
        self.dense = nn.Linear(config.in_features + config.noise_dim, channels[0] * sizes[0] * sizes[0])
        self.dense_norm = nn.BatchNorm2d(channels[0]) if config.batch_norm else nn.Identity()
        self.dense_act = nn.LeakyReLU(LEAKY_SLOPE)
        self.blocks = nn.Sequential(*[
            UpBlock(channels[i], channels[i + 1], kernel_size=config.kernel_size,
                    out_size=sizes[i + 1], batch_norm=config.batch_norm, mode=config.upsample_mode,
                    noise=config.block_noise, padding_mode=config.padding_mode)
            for i in range(n_blocks)
        ])
        self.to_image = nn.Conv2d(channels[-1], config.out_channels, config.kernel_size,
                                  padding=config.kernel_size // 2, padding_mode=config.padding_mode)

        # inference only: exact 2× up-samplings fused into the next convolution (see forward)
        self.fuse_upsampling = True
        self._fused: dict[str, dict] = {}  # derived inference weights, never saved

    def noise_map_sizes(self) -> list[int]:
        """Edge of each block's noise map (the resolution its convolution runs at); [] without block noise."""
        if not self.config.block_noise:
            return []
        return upsample_sizes(self.config.image_size, len(self.blocks))[:-1]

    def sample_noise_maps(self, n: int, *, generator: torch.Generator | None = None,
                          device: torch.device | str = "cpu") -> list[torch.Tensor]:
        """One N(0, 1) map (n, 1, s, s) per block, drawn on the CPU from `generator` (reproducible)."""
        return [torch.randn(n, 1, s, s, generator=generator).to(device) for s in self.noise_map_sizes()]

    def forward(self, z: torch.Tensor, noise_maps: list[torch.Tensor] | None = None) -> torch.Tensor:
        z = self.with_noise(z)
        if noise_maps is not None:
            return self._forward_with_noise_maps(z, noise_maps)
        # torch.compile traces the layer-by-layer path (its caches key on tensor identity) and fuses itself
        if (self.fuse_upsampling and not torch.compiler.is_compiling() and self._dense_foldable()
                and all(b.inference_ready() for b in self.blocks)):
            return self._fused_inference(z)
        x = self.blocks(self._dense_grid(z))  # (B, C_last, image_size, image_size)
        return torch.sigmoid(self.to_image(x))  # (B, out_channels, image_size, image_size)

    def _dense_grid(self, z: torch.Tensor) -> torch.Tensor:
        """The dense layer's output as the first block's input grid (B, C0, s0, s0), layer by layer."""
        x = self.dense(z).view(z.shape[0], *self.grid)
        # channels-last lets oneDNN/cuDNN pick NHWC kernels: ~1.7× faster generation on CPU
        x = x.contiguous(memory_format=torch.channels_last)
        return self.dense_act(self.dense_norm(x))

    def _forward_with_noise_maps(self, z: torch.Tensor, noise_maps: list[torch.Tensor]) -> torch.Tensor:
        sizes = self.noise_map_sizes()
        if not sizes:
            raise ValueError("this generator has no block noise (GeneratorConfig.block_noise is off)")
        if len(noise_maps) != len(sizes) or any(m.shape != (z.shape[0], 1, s, s) for m, s in zip(noise_maps, sizes)):
            raise ValueError(f"noise_maps must be {len(sizes)} tensors of shape (B, 1, s, s) for s in {sizes}")
        x = self._dense_grid(z)
        for block, noise_map in zip(self.blocks, noise_maps):
            x = block(x, noise_map)
        return torch.sigmoid(self.to_image(x))

    def with_noise(self, z: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """(B, in_features [+ noise_dim]) → the dense layer's input: zero noise appended where none is given."""
        n_in, n_noise = self.config.in_features, self.config.noise_dim
        if z.shape[-1] == n_in + n_noise and noise is None:
            return z
        if z.shape[-1] != n_in:
            raise ValueError(f"expected inputs of {n_in} features (+ {n_noise} noise), got {z.shape[-1]} columns")
        if n_noise == 0:
            if noise is not None and noise.shape[-1]:
                raise ValueError("this generator has no noise input (noise_dim = 0)")
            return z
        if noise is None:
            noise = z.new_zeros(z.shape[0], n_noise)
        elif noise.shape != (z.shape[0], n_noise):
            raise ValueError(f"noise must have shape ({z.shape[0]}, {n_noise}), got {tuple(noise.shape)}")
        return torch.cat([z, noise.to(z.dtype)], dim=1)

    def _dense_foldable(self) -> bool:
        norm = self.dense_norm
        return not self.training and not torch.is_grad_enabled() and (
            isinstance(norm, nn.Identity)
            or (isinstance(norm, nn.BatchNorm2d) and norm.running_mean is not None and norm.running_var is not None))

    def _fused_inference(self, z: torch.Tensor) -> torch.Tensor:
        """The whole network in eval mode without gradients, in fewer and larger operations:
        the dense layer's batch norm folded into it, and each exact 2× up-sampling carried
        into the next convolution (`upsample2x_conv2d`) instead of run.

        Same function as the layers above up to float round-off: the fused convolution does
        the same multiply-adds on the low-res grid. Training never comes here (gradients on).
        """
        weight, bias = self._dense_inference()
        channels, size = self.grid[0], self.grid[1]
        # rows ordered (y, x, c): the product is already the channels-last grid, no copy
        x = torch.addmm(bias, z, weight.t()).view(z.shape[0], size, size, channels).permute(0, 3, 1, 2)
        x = F.leaky_relu(x, LEAKY_SLOPE, inplace=True)
        pending: str | None = None  # mode of a 2× up-sampling not yet applied to x
        for i, block in enumerate(self.blocks):
            weight, bias, key = block.inference_conv()
            x = self._conv(f"blocks.{i}", x, weight, bias, key, pending, _leaky_relu_out)
            pending = block.doubling_mode(x.shape[-1]) if x.shape[-1] == x.shape[-2] else None
            if pending is None:
                x = block.up(x)
        conv = self.to_image
        key = tensors_key(conv.weight, conv.bias)
        return self._conv("to_image", x, conv.weight, conv.bias, key, pending, torch.sigmoid)

    def _dense_inference(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense weight and bias with the batch norm folded in, output rows in (y, x, c) order."""
        dense, norm = self.dense, self.dense_norm
        sources = (dense.weight, dense.bias) + (() if isinstance(norm, nn.Identity) else
                                                (norm.weight, norm.bias, norm.running_mean, norm.running_var))
        key = tensors_key(*sources)
        cache = self._fused.setdefault("dense", {})
        entry = cache.get("entry")
        if key is None or entry is None or entry["key"] != key:
            channels, size = self.grid[0], self.grid[1]
            weight = dense.weight.detach().view(channels, size * size, -1)
            bias = dense.bias.detach().view(channels, size * size)
            if isinstance(norm, nn.BatchNorm2d):
                scale = torch.rsqrt(norm.running_var + norm.eps)
                if norm.weight is not None:
                    scale = scale * norm.weight
                shift = -norm.running_mean * scale
                if norm.bias is not None:
                    shift = shift + norm.bias
                weight = weight * scale[:, None, None]
                bias = bias * scale[:, None] + shift[:, None]
            weight = weight.permute(1, 0, 2).reshape(channels * size * size, -1).contiguous()
            bias = bias.t().reshape(-1).contiguous()
            entry = {"key": key, "weight": weight, "bias": bias}
            if key is not None:
                cache["entry"] = entry
        return entry["weight"], entry["bias"]

    def _conv(self, name: str, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
              key: tuple | None, pending: str | None, activation) -> torch.Tensor:
        """activation(conv(x)), or activation(conv(up2×(x))) fused when `pending` names the up-sampling."""
        padding_mode = self.config.padding_mode
        if pending is None:
            y = same_conv2d(x, weight, bias, padding_mode)
            return activation(y, out=y)
        return upsample2x_conv2d(x, weight, bias, mode=pending, cache=self._fused.setdefault(name, {}),
                                 source_key=key, activation=activation, padding_mode=padding_mode)


def with_noise_columns(weight: torch.Tensor, noise_dim: int) -> torch.Tensor:
    """A noise-free generator's dense weight (out, p) → (out, p + noise_dim) with zero noise columns.

    Warm starts: the widened generator draws exactly the old images at step 0 for any noise, and
    the zero columns still get gradients (∂L/∂W = δ ⊗ noise), so training grows the noise's use.
    """
    if noise_dim < 0:
        raise ValueError(f"noise_dim must be ≥ 0, got {noise_dim}")
    return torch.cat([weight, weight.new_zeros(weight.shape[0], noise_dim)], dim=1)


def _leaky_relu_out(x: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.leaky_relu.out(x, LEAKY_SLOPE, out=out)


@contextmanager
def unfused_upsampling(module: nn.Module) -> Iterator[nn.Module]:
    """Run `module`'s generators layer by layer (up-sampling, then convolution) inside the block.

    For checks of the fused inference path and for counting the network's nominal FLOPs.
    """
    generators = [m for m in module.modules() if isinstance(m, Generator)]
    before = [g.fuse_upsampling for g in generators]
    for g in generators:
        g.fuse_upsampling = False
    try:
        yield module
    finally:
        for g, flag in zip(generators, before):
            g.fuse_upsampling = flag

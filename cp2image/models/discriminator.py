"""The discriminator (5 down-sampling blocks + linear head) and the shared conv encoder.

`ConvEncoder` is the trunk; `Discriminator` adds a spectrally normalised logit head
and exposes every block's activation for CP2Image's hidden-layer loss; the VAE
encoder reuses the same trunk with a (mu, log-variance) head.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from cp2image.models.blocks import DownBlock, pooled_size, scaled_channels


@dataclass
class EncoderConfig:
    """Shape of a conv trunk (discriminator or VAE encoder)."""

    image_size: int = 68
    in_channels: int = 3
    base_filters: int = 32
    kernel_size: int = 5
    channel_mults: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0, 4.0])  # one per block
    batch_norm: bool = True
    spectral_norm: bool = True  # the paper's stabiliser for the discriminator


class ConvEncoder(nn.Module):
    """(B, C, H, W) → list of block activations, last one (B, C_last, h, h)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        channels = [config.in_channels, *scaled_channels(config.base_filters, config.channel_mults)]
        self.blocks = nn.ModuleList([
            DownBlock(channels[i], channels[i + 1], kernel_size=config.kernel_size,
                      spectral=config.spectral_norm, batch_norm=config.batch_norm)
            for i in range(len(channels) - 1)
        ])
        side = pooled_size(config.image_size, len(self.blocks))
        self.out_features = channels[-1] * side * side

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        hidden = []
        for block in self.blocks:
            x = block(x)
            hidden.append(x)
        return hidden


class Discriminator(nn.Module):
    """Image → (logit (B,), hidden activations of each block) for real-vs-generated.

    `condition_dim` > 0 makes it a projection discriminator (Miyato & Koyama 2018):
    D(x, y) = ψ(φ(x)) + ⟨V y, φ(x)⟩, with φ the flattened last block and y the cell's
    standardised features, so "real" means "a real cell *with these features*" and the
    generator cannot pass with a sharp cell of the wrong profile. Without y (the hidden-layer
    loss needs no logit) only ψ(φ(x)) is returned.
    """

    def __init__(self, config: EncoderConfig, condition_dim: int = 0) -> None:
        super().__init__()
        if condition_dim < 0:
            raise ValueError(f"condition_dim must be ≥ 0, got {condition_dim}")
        self.config = config
        self.condition_dim = condition_dim
        self.trunk = ConvEncoder(config)
        head = nn.Linear(self.trunk.out_features, 1)
        self.head = spectral_norm(head) if config.spectral_norm else head
        if condition_dim:
            embed = nn.Linear(condition_dim, self.trunk.out_features, bias=False)  # V
            self.embed = spectral_norm(embed) if config.spectral_norm else embed

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hidden = self.trunk(x)
        phi = hidden[-1].flatten(1)  # (B, out_features)
        logit = self.head(phi).squeeze(1)  # (B,)
        if y is not None:
            if not self.condition_dim:
                raise ValueError("this discriminator is unconditional (condition_dim = 0); pass no y")
            if y.shape != (x.shape[0], self.condition_dim):
                raise ValueError(f"y must have shape ({x.shape[0]}, {self.condition_dim}), got {tuple(y.shape)}")
            logit = logit + (self.embed(y.to(phi.dtype)) * phi).sum(dim=1)  # ⟨V y, φ(x)⟩
        return logit, hidden

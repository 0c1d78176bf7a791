"""LSGAN baseline (CytoGAN-style, Goldsborough et al. 2017): noise → image.

The generator is the CP2Image `Generator` fed Gaussian noise; it is trained against
the CP2Image `Discriminator` with least-squares losses (see training.losses).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cp2image.channels import CHANNELS, CROP_SIZE
from cp2image.models.generator import Generator, GeneratorConfig
from cp2image.models.hub_io import StrictHubMixin


@dataclass
class LSGANConfig:
    """Architecture of the LSGAN generator (→ config.json)."""

    latent_dim: int = 128
    channels: list[str] = field(default_factory=lambda: list(CHANNELS))
    image_size: int = CROP_SIZE
    base_filters: int = 32
    kernel_size: int = 5
    generator_channel_mults: list[float] = field(default_factory=lambda: [1.0, 2.0, 2.0, 1.0, 0.5])
    batch_norm: bool = True
    upsample_mode: str = "nearest"
    provenance: dict[str, Any] = field(default_factory=dict)


class LSGAN(nn.Module, StrictHubMixin, library_name="cp2image", license="mit", tags=["lsgan", "cell-painting"]):
    """Noise (B, latent_dim) → image (B, 3, H, W) in [0, 1]."""

    config_class = LSGANConfig

    def __init__(self, config: LSGANConfig) -> None:
        super().__init__()
        if isinstance(config, dict):
            config = LSGANConfig(**config)
        self.config = config
        self.generator = Generator(GeneratorConfig(
            in_features=config.latent_dim, image_size=config.image_size, out_channels=len(config.channels),
            base_filters=config.base_filters, kernel_size=config.kernel_size,
            channel_mults=list(config.generator_channel_mults), batch_norm=config.batch_norm,
            upsample_mode=config.upsample_mode,
        ))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    @torch.inference_mode()
    def sample(self, n: int, *, seed: int = 0) -> np.ndarray:
        """n uint8 images (N, 3, H, W) from seeded noise."""
        z = torch.randn(n, self.config.latent_dim, generator=torch.Generator().manual_seed(seed))
        was_training = self.training
        self.eval()
        try:
            images = self(z.to(next(self.parameters()).device))
        finally:
            self.train(was_training)
        return images.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()

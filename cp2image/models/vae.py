"""VAE and VAEplus baselines (paper Table 1), built from the CP2Image blocks.

Encoder = the discriminator's conv trunk (no spectral norm) + a (mu, log σ²) head;
decoder = the CP2Image `Generator` fed a latent code instead of CP features.
VAEplus (Lafarge et al. 2019) is the same network trained with the discriminator's
hidden-layer losses added; only the training objective differs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cp2image.channels import CHANNELS, CROP_SIZE
from cp2image.models.discriminator import ConvEncoder, EncoderConfig
from cp2image.models.generator import Generator, GeneratorConfig
from cp2image.models.hub_io import StrictHubMixin


@dataclass
class VAEConfig:
    """Architecture of the VAE baselines (→ config.json)."""

    latent_dim: int = 128
    channels: list[str] = field(default_factory=lambda: list(CHANNELS))
    image_size: int = CROP_SIZE
    base_filters: int = 32
    kernel_size: int = 5
    encoder_channel_mults: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0, 4.0])
    decoder_channel_mults: list[float] = field(default_factory=lambda: [1.0, 2.0, 2.0, 1.0, 0.5])
    batch_norm: bool = True
    upsample_mode: str = "nearest"
    provenance: dict[str, Any] = field(default_factory=dict)


class VAE(nn.Module, StrictHubMixin, library_name="cp2image", license="mit", tags=["vae", "cell-painting"]):
    """Image (B, 3, H, W) in [0, 1] → reconstruction, mu, log σ²."""

    config_class = VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        if isinstance(config, dict):
            config = VAEConfig(**config)
        self.config = config
        self.encoder = ConvEncoder(EncoderConfig(
            image_size=config.image_size, in_channels=len(config.channels), base_filters=config.base_filters,
            kernel_size=config.kernel_size, channel_mults=list(config.encoder_channel_mults),
            batch_norm=config.batch_norm, spectral_norm=False,
        ))
        self.to_latent = nn.Linear(self.encoder.out_features, 2 * config.latent_dim)
        self.decoder = Generator(GeneratorConfig(
            in_features=config.latent_dim, image_size=config.image_size, out_channels=len(config.channels),
            base_filters=config.base_filters, kernel_size=config.kernel_size,
            channel_mults=list(config.decoder_channel_mults), batch_norm=config.batch_norm,
            upsample_mode=config.upsample_mode,
        ))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)[-1].flatten(1)  # (B, C·h·w)
        mu, logvar = self.to_latent(h).chunk(2, dim=1)  # (B, latent), (B, latent)
        return mu, logvar.clamp(-20, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decoder(z), mu, logvar

    @torch.inference_mode()
    def reconstruct(self, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """uint8 (N, 3, H, W) → uint8 reconstructions from the posterior mean."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
        out = np.empty_like(images)
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(images[start:start + batch_size]).to(device).float() / 255
                recon, _, _ = self(x)
                out[start:start + len(x)] = recon.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
        finally:
            self.train(was_training)
        return out

    @torch.inference_mode()
    def sample(self, n: int, *, seed: int = 0) -> np.ndarray:
        """n images decoded from the prior N(0, I), uint8."""
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        was_training = self.training
        self.eval()
        try:
            images = self.decoder(z.to(next(self.parameters()).device))
        finally:
            self.train(was_training)
        return images.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()


class VAEplus(VAE, tags=["vaeplus"]):
    """The VAE network trained with discriminator hidden-layer losses (Lafarge et al. 2019)."""

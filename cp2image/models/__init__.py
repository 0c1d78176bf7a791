"""Models: the CP2Image generator/discriminator of the paper and the Table 1 baselines.

- `CP2Image` (Hub mixin; `from_pretrained`, `save_pretrained`, `generate`)
- `Generator`, `Discriminator`, `ConvEncoder` and their blocks (`blocks`)
- `VAE`, `VAEplus`, `LSGAN` baselines built from the same blocks
- `hub.load_model(spec)` for the app/CLI (bundled / local / Hub, offline fallback)
- `testing.tiny_model(feature_names, seed)` for fast tests elsewhere
"""
from cp2image.models.blocks import DownBlock, UpBlock, parameter_count
from cp2image.models.cp2image import CP2Image, CP2ImageConfig
from cp2image.models.discriminator import ConvEncoder, Discriminator, EncoderConfig
from cp2image.models.generator import Generator, GeneratorConfig
from cp2image.models.lsgan import LSGAN, LSGANConfig
from cp2image.models.vae import VAE, VAEConfig, VAEplus

__all__ = [
    "CP2Image",
    "CP2ImageConfig",
    "ConvEncoder",
    "Discriminator",
    "DownBlock",
    "EncoderConfig",
    "Generator",
    "GeneratorConfig",
    "LSGAN",
    "LSGANConfig",
    "UpBlock",
    "VAE",
    "VAEConfig",
    "VAEplus",
    "parameter_count",
]

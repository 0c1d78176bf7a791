"""Models: the CP2Image generator/discriminator of the paper and the Table 1 baselines.

- `CP2Image` (Hub mixin; `from_pretrained`, `save_pretrained`, `generate`)
- `Generator`, `Discriminator`, `ConvEncoder` and their blocks (`blocks`)
- `VAE`, `VAEplus`, `LSGAN` baselines built from the same blocks
- `hub.load_model(spec)` for the app/CLI (bundled / local / Hub, offline fallback)
- `testing.tiny_model(feature_names, seed)` for fast tests elsewhere

The names below are imported on first use (PEP 562), so that importing a light submodule
(`cp2image.models.hub` to name a model) does not import torch through this package.
"""
from __future__ import annotations

from cp2image.lazy import lazy_exports

_HOMES = {  # exported name → the submodule that defines it
    "DownBlock": "blocks", "UpBlock": "blocks", "parameter_count": "blocks",
    "CP2Image": "cp2image", "CP2ImageConfig": "cp2image",
    "ConvEncoder": "discriminator", "Discriminator": "discriminator", "EncoderConfig": "discriminator",
    "Generator": "generator", "GeneratorConfig": "generator",
    "LSGAN": "lsgan", "LSGANConfig": "lsgan",
    "VAE": "vae", "VAEConfig": "vae", "VAEplus": "vae",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())

"""VAE, VAEplus and LSGAN reuse the CP2Image blocks and save/load like CP2Image."""
from __future__ import annotations

import numpy as np
import torch

from cp2image.models import ConvEncoder, Generator
from cp2image.models.lsgan import LSGAN, LSGANConfig
from cp2image.models.vae import VAE, VAEConfig, VAEplus


def test_vae_is_the_discriminator_trunk_plus_the_cp2image_generator():
    vae = VAE(VAEConfig(base_filters=4, kernel_size=3, latent_dim=6))
    assert isinstance(vae.encoder, ConvEncoder) and isinstance(vae.decoder, Generator)
    assert vae.decoder.config.in_features == 6
    assert not any("parametrizations" in name for name, _ in vae.named_modules())  # no spectral norm in a VAE


def test_vae_forward_shapes_and_eval_uses_posterior_mean():
    vae = VAE(VAEConfig(base_filters=4, kernel_size=3, latent_dim=6)).eval()
    x = torch.rand(2, 3, 68, 68)
    recon, mu, logvar = vae(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 6)
    torch.testing.assert_close(vae(x)[0], recon)  # deterministic in eval mode


def test_vaeplus_has_the_vae_network():
    a = VAE(VAEConfig(base_filters=4, kernel_size=3))
    b = VAEplus(VAEConfig(base_filters=4, kernel_size=3))
    assert a.state_dict().keys() == b.state_dict().keys()


def test_lsgan_generator_is_the_cp2image_generator_on_noise():
    gan = LSGAN(LSGANConfig(base_filters=4, kernel_size=3, latent_dim=5))
    assert isinstance(gan.generator, Generator) and gan.generator.config.in_features == 5
    a, b = gan.sample(3, seed=1), gan.sample(3, seed=1)
    assert a.dtype == np.uint8 and a.shape == (3, 3, 68, 68)
    np.testing.assert_array_equal(a, b)


def test_baselines_round_trip_through_save_pretrained(tmp_path):
    torch.manual_seed(0)
    vae = VAEplus(VAEConfig(base_filters=4, kernel_size=3, latent_dim=6))
    vae.save_pretrained(tmp_path / "vae")
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 68, 68), dtype=np.uint8)
    np.testing.assert_array_equal(VAEplus.from_pretrained(tmp_path / "vae").reconstruct(images),
                                  vae.reconstruct(images))
    gan = LSGAN(LSGANConfig(base_filters=4, kernel_size=3, latent_dim=5))
    gan.save_pretrained(tmp_path / "gan")
    np.testing.assert_array_equal(LSGAN.from_pretrained(tmp_path / "gan").sample(2), gan.sample(2))

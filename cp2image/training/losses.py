"""Loss terms of CP2Image and the baselines (paper section 3).

generator:      L = MSE(X_gen, X_orig) + Σ_i γ_i · MSE(D_i(X_orig), D_i(X_gen))
discriminator:  L = BCE(D(X_real), 1) + BCE(D(X_gen), 0), X_real independent of X_orig
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_mse(generated: torch.Tensor, original: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """Mean squared error over all pixels and channels, of `pool` × `pool` block means when `pool` > 1.

    Why pool: puncta, bundles and fibres sit where the features do not say, so the per-pixel answer that
    minimises MSE is their average, a haze. Compared as block means, the pixel loss fixes a cell's layout
    and leaves the detail inside each block to the adversarial, critic and texture terms. Blocks at the far
    edge of a size that `pool` does not divide average the pixels they have.
    """
    if pool < 1:
        raise ValueError(f"pool must be ≥ 1, got {pool}")
    generated, original = generated.float(), original.float()
    if pool > 1:
        generated = F.avg_pool2d(generated, pool, ceil_mode=True)
        original = F.avg_pool2d(original, pool, ceil_mode=True)
    return F.mse_loss(generated, original)


def block_detail(images: torch.Tensor, pool: int) -> torch.Tensor:
    """What each pixel adds to its `pool` × `pool` block mean: the part of an image a pooled pixel MSE leaves free."""
    if pool < 2:
        raise ValueError(f"block detail needs pool ≥ 2, got {pool}")
    images = images.float()
    h, w = images.shape[-2:]
    means = F.avg_pool2d(images, pool, ceil_mode=True)
    means = means.repeat_interleave(pool, dim=-2).repeat_interleave(pool, dim=-1)[..., :h, :w]
    return images - means


def detail_diversity(first: torch.Tensor, second: torch.Tensor, original: torch.Tensor, pool: int) -> torch.Tensor:
    """Hinge in [0, 1]: 1 − (mean |detail(first) − detail(second)|) / (mean |detail(original)|), floored at 0.

    Why: two noise draws for one profile. Under a pixel loss the generator learns to ignore its noise
    and draws the average of where puncta and fibres could be, a haze. This asks two draws to differ
    inside the pooled loss's blocks by as much as real detail is large, so the noise decides where the
    detail goes (a mode-seeking term, compared on the detail alone so that the cell's layout, which the
    features fix, is not asked to vary). Zero once the draws differ that much; the original is a scale only.
    """
    spread = (block_detail(first, pool) - block_detail(second, pool)).abs().mean()
    scale = block_detail(original, pool).abs().mean().detach().clamp_min(1e-6)
    return torch.relu(1 - spread / scale)


def hidden_layer_losses(hidden_original: list[torch.Tensor], hidden_generated: list[torch.Tensor]) -> list[torch.Tensor]:
    """L_i^H = MSE between discriminator activations of original and generated images, per layer."""
    if len(hidden_original) != len(hidden_generated):
        raise ValueError(f"{len(hidden_original)} original vs {len(hidden_generated)} generated layers")
    return [F.mse_loss(g.float(), o.float()) for o, g in zip(hidden_original, hidden_generated)]


def weighted_hidden_loss(losses: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """L^H = Σ_i γ_i · L_i^H (layers with γ_i = 0 contribute exactly zero)."""
    if len(losses) != len(weights):
        raise ValueError(f"{len(losses)} layer losses but {len(weights)} weights γ_i")
    total = torch.zeros((), device=losses[0].device) if losses else torch.zeros(())
    for loss, weight in zip(losses, weights):
        if weight:
            total = total + weight * loss
    return total


def discriminator_bce(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(real), 1) + BCE(D(generated), 0) on logits."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN generator loss: BCE(D(generated), 1) on logits."""
    fake_logits = fake_logits.float()
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def lsgan_discriminator(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN (Mao et al. 2017): ½(D(real) − 1)² + ½ D(fake)²."""
    return 0.5 * ((real_scores.float() - 1).pow(2).mean() + fake_scores.float().pow(2).mean())


def lsgan_generator(fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN generator loss: ½(D(fake) − 1)²."""
    return 0.5 * (fake_scores.float() - 1).pow(2).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, σ²) ‖ N(0, 1)) summed over latent dimensions, averaged over the batch."""
    mu, logvar = mu.float(), logvar.float()
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()

"""Texture statistics that ignore where a structure sits, and a paired loss on them (issue 13).

Why: the pixel loss asks the generator for the average crop of a profile. Actin puncta,
tubulin bundles and fibres sit where the profile does not say, so their average is a haze,
and the measured texture features of generated cells shrink towards the mean cell
(docs/generator-ablation.md, "Where the MoA signal is lost"). Statistics pooled over the
whole crop (band-pass energy, its sparsity, orientation energy, channel co-occurrence, at
several scales) can be matched without knowing where anything sits: a generated cell may
draw its puncta anywhere, as long as it draws as many, as bright, as the real one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TextureConfig:
    """`scales`: octaves of the pyramid (each halves the image); `eps` keeps roots and ratios finite."""

    scales: int = 3
    eps: float = 1e-4

    def __post_init__(self) -> None:
        if int(self.scales) < 1:
            raise ValueError(f"scales must be ≥ 1, got {self.scales}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")


def _band_pass(x: torch.Tensor) -> torch.Tensor:
    """x minus its 3 × 3 box blur (edges replicated): the detail of one octave."""
    return x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


class TextureStatistics(NamedTuple):
    """Pooled statistics of a batch: `magnitudes` (B, M) ≥ 0 in intensity units, `correlations` (B, Q) in [−1, 1]."""

    magnitudes: torch.Tensor
    correlations: torch.Tensor


def _octave_statistics(x: torch.Tensor, eps: float) -> TextureStatistics:
    """Statistics of one octave of (B, C, H, W) images, each pooled over the whole image."""
    band = _band_pass(x)
    energy = band.pow(2).mean((2, 3))  # (B, C) how much detail
    peaks = band.pow(4).mean((2, 3))  # (B, C) how concentrated it is: puncta raise it, haze does not
    gx = x[..., :-1, 1:] - x[..., :-1, :-1]
    gy = x[..., 1:, :-1] - x[..., :-1, :-1]
    jxx, jyy, jxy = gx.pow(2).mean((2, 3)), gy.pow(2).mean((2, 3)), (gx * gy).mean((2, 3))  # structure tensor
    c = x.shape[1]
    rows, cols = torch.triu_indices(c, c, offset=1)
    cross = (band[:, rows] * band[:, cols]).mean((2, 3))  # (B, C(C−1)/2) detail shared by two channels
    magnitudes = torch.cat([(energy + eps).sqrt(), (peaks + eps**2).pow(0.25), (jxx + eps).sqrt(),
                            (jyy + eps).sqrt()], dim=1)
    correlations = torch.cat([
        jxy / ((jxx * jyy).sqrt() + eps),  # orientation coherence: fibres along a diagonal
        cross / ((energy[:, rows] * energy[:, cols]).sqrt() + eps),  # the two channels' detail in common
    ], dim=1)
    return TextureStatistics(magnitudes, correlations)


def texture_statistics(images: torch.Tensor, config: TextureConfig | None = None) -> TextureStatistics:
    """Placement-free texture statistics of (B, C, H, W) images in [0, 1], over `config.scales` octaves."""
    cfg = config or TextureConfig()
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W); got shape {tuple(images.shape)}")
    x = images.float()
    octaves = []
    for octave in range(cfg.scales):
        if min(x.shape[-2:]) < 4:
            raise ValueError(f"{cfg.scales} octaves need images of at least {4 * 2 ** (cfg.scales - 1)} px; "
                             f"got {tuple(images.shape[-2:])}")
        octaves.append(_octave_statistics(x, cfg.eps))
        if octave + 1 < cfg.scales:
            x = F.avg_pool2d(x, 2)
    return TextureStatistics(torch.cat([o.magnitudes for o in octaves], dim=1),
                             torch.cat([o.correlations for o in octaves], dim=1))


def texture_loss(generated: torch.Tensor, original: torch.Tensor, config: TextureConfig | None = None
                 ) -> torch.Tensor:
    """Squared error of the generated images' statistics against their originals', averaged.

    Magnitudes are compared relative to their mean over the originals in the batch, so faint and
    strong ones weigh alike and the loss does not depend on the images' brightness scale;
    correlations are unitless already and are compared as they are (dividing by a mean near 0
    would blow them up).
    """
    cfg = config or TextureConfig()
    if generated.shape != original.shape:
        raise ValueError(f"generated {tuple(generated.shape)} and original {tuple(original.shape)} differ in shape")
    with torch.no_grad():
        target = texture_statistics(original, cfg)
    made = texture_statistics(generated, cfg)
    scale = target.magnitudes.mean(0) + cfg.eps
    relative = ((made.magnitudes - target.magnitudes) / scale).pow(2)
    absolute = (made.correlations - target.correlations).pow(2)
    return torch.cat([relative, absolute], dim=1).mean()

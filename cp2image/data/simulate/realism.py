"""How a cell's stains are laid out around its nucleus: the yardstick for the simulator's realism.

Tubulin and actin are told apart in MCF-7 cells less by how bright they are than
by *where* they are: β-tubulin is a perinuclear filament network, densest just
outside the nucleus and fading towards the cell edge; F-actin is cortical,
dim next to the nucleus and bright at the cell border. `radial_profiles`
measures exactly that on uint8 crops, the same way for real and simulated cells,
so the simulator can be checked against real BBBC021 DMSO crops (and a crop
archive's channel order can be checked at all).

Profile: for each crop, the central nucleus and cell are segmented by
`cp2image.features.segment_batch`; every cytoplasm pixel gets its distance (px)
from the nucleus edge; the mean intensity of each channel is taken in 1-px
distance bins, divided by the crop's mean cytoplasm intensity of that channel
(so exposure and per-crop max scaling cancel). `near_far_ratio` condenses it to
one number per channel: mean intensity 0–5 px from the nucleus over 7–12 px.

Channel balance (`channel_balance`): the absolute levels of each stain over
many crops (mean, 99th percentile, clipped fraction), which decide how a
composite looks. Real crops are compared through `linear_exposure`, because the
simulator's intensities are absolute while ingested real crops are max-scaled
per crop.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from cp2image.channels import CHANNELS

SATURATED = 255  # an 8-bit pixel at this value was clipped by the camera (or set the crop's max on ingest)
NEAR_PX: tuple[float, float] = (0.0, 5.0)  # (lo, hi] distance from the nucleus edge, "near"
FAR_PX: tuple[float, float] = (7.0, 12.0)  # (lo, hi] distance from the nucleus edge, "far"


def radial_profiles(images: np.ndarray, *, max_distance: int = 20) -> np.ndarray:
    """Per-crop cytoplasm intensity by distance from the nucleus, (N, 3, max_distance).

    `images` are uint8 crops (N, 3, H, W) in `CHANNELS` order. Bin d holds
    pixels with distance in (d, d + 1] px from the nucleus; values are relative
    to the crop's mean cytoplasm intensity per channel. Crops whose segmentation
    failed, empty bins and channels without signal are NaN.
    """
    from cp2image.features import segment_batch

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != len(CHANNELS) or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, 3, H, W) in order {', '.join(CHANNELS)}; "
                         f"got {images.dtype} {images.shape}")
    seg = segment_batch(images)
    out = np.full((len(images), len(CHANNELS), max_distance), np.nan)
    for i in np.flatnonzero(seg.ok):
        cyto = seg.cytoplasm[i]
        if not cyto.any():
            continue
        dist = ndi.distance_transform_edt(~seg.nucleus[i])
        bins = np.ceil(dist[cyto]).astype(np.int64) - 1  # (d, d+1] → bin d
        keep = (bins >= 0) & (bins < max_distance)
        counts = np.bincount(bins[keep], minlength=max_distance)
        for c in range(len(CHANNELS)):
            values = images[i, c][cyto].astype(np.float64)
            mean = values.mean()
            if mean <= 0:
                continue
            sums = np.bincount(bins[keep], weights=values[keep], minlength=max_distance)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[i, c] = np.where(counts > 0, sums / counts, np.nan) / mean
    return out


def near_far_ratio(profiles: np.ndarray) -> dict[str, float]:
    """Median over crops of mean(profile near the nucleus) / mean(profile farther out), per channel.

    > 1: the stain crowds around the nucleus (tubulin); < 1: it sits at the cell
    edge (actin). Bins are weighted equally within each range.
    """
    d = np.arange(profiles.shape[-1]) + 0.5  # bin centres (px)
    near = (d > NEAR_PX[0]) & (d <= NEAR_PX[1])
    far = (d > FAR_PX[0]) & (d <= FAR_PX[1])
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # failed crops are all-NaN: their ratio is NaN
        ratio = np.nanmean(profiles[..., near], axis=-1) / np.nanmean(profiles[..., far], axis=-1)  # (N, 3)
    return {name: float(np.nanmedian(ratio[:, c])) for c, name in enumerate(CHANNELS)}


@dataclass(frozen=True)
class ChannelBalance:
    """Pooled per-channel pixel statistics of a set of uint8 crops, in `CHANNELS` order.

    What a composite's colour balance rests on: how bright each stain is on
    average (`mean`), how far up the 8-bit range its bright structures reach
    (`p99`), and how much of it the camera clipped (`saturated`, a fraction).
    """

    mean: tuple[float, ...]
    p99: tuple[float, ...]
    saturated: tuple[float, ...]

    def row(self, channel: str) -> str:
        """'mean 62.3, p99 233, saturated 0.62 %' for one channel (for messages and tables)."""
        c = CHANNELS.index(channel)
        return f"mean {self.mean[c]:.1f}, p99 {self.p99[c]:.0f}, saturated {100 * self.saturated[c]:.2f} %"


def channel_balance(images: np.ndarray) -> ChannelBalance:
    """Mean, 99th percentile and saturated fraction of every channel over all pixels of `images`.

    `images` are uint8 crops (N, 3, H, W) in `CHANNELS` order, as stored in a dataset.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != len(CHANNELS) or images.dtype != np.uint8 or not len(images):
        raise ValueError(f"images must be a non-empty uint8 (N, 3, H, W) in order {', '.join(CHANNELS)}; "
                         f"got {images.dtype} {images.shape}")
    pixels = images.transpose(1, 0, 2, 3).reshape(len(CHANNELS), -1)
    return ChannelBalance(
        mean=tuple(float(v) for v in pixels.mean(axis=1)),
        p99=tuple(float(v) for v in np.percentile(pixels, 99, axis=1)),
        saturated=tuple(float(v) for v in (pixels >= SATURATED).mean(axis=1)),
    )


def max_scaled(raw: np.ndarray) -> np.ndarray:
    """Raw crops (N, 3, H, W) → uint8 with each crop and channel divided by its maximum (as ingest does)."""
    x = np.asarray(raw, dtype=np.float32)  # exact for 16-bit values, half the memory of float64
    top = np.maximum(x.max(axis=(2, 3), keepdims=True), 1.0)
    return np.round(255 * x / top).astype(np.uint8)


def linear_exposure(raw: np.ndarray, plates: np.ndarray, p99: Sequence[float], *, min_cells: int = 20) -> np.ndarray:
    """Raw crops recorded with one exposure per plate and channel: uint8 (M, 3, H, W), M ≤ N.

    The yardstick for a simulator whose intensities are absolute. Ingested real
    crops are scaled *per crop* to their maximum, so no crop is dimmer than its
    own brightest pixel allows and exactly one pixel per crop and channel sits at
    255; a camera with one exposure cannot do that while cells differ in
    brightness. Here each plate's channel is scaled by one gain that puts the
    plate's pooled 99th percentile at `p99` (the ingested crops' own), then
    clipped: the mean and saturation a linear camera would show at that level.
    Plates with fewer than `min_cells` crops are left out (one gain from a
    handful of cells would just fit them).
    """
    raw = np.asarray(raw, dtype=np.float32)
    plates = np.asarray(plates)
    if raw.ndim != 4 or raw.shape[1] != len(CHANNELS) or len(plates) != len(raw):
        raise ValueError(f"raw must be (N, 3, H, W) with one plate per crop; got {raw.shape} and {len(plates)} plates")
    target = np.asarray(p99, dtype=np.float32).reshape(1, -1, 1, 1)
    out = []
    for plate in np.unique(plates):
        crops = raw[plates == plate]
        if len(crops) < min_cells:
            continue
        level = np.percentile(crops.transpose(1, 0, 2, 3).reshape(len(CHANNELS), -1), 99, axis=1).reshape(1, -1, 1, 1)
        out.append(np.clip(np.round(crops * target / np.maximum(level, 1e-12)), 0, 255).astype(np.uint8))
    if not out:
        raise ValueError(f"no plate has {min_cells} or more crops")
    return np.concatenate(out)


__all__ = ["ChannelBalance", "channel_balance", "linear_exposure", "max_scaled", "radial_profiles", "near_far_ratio",
           "NEAR_PX", "FAR_PX"]

"""Turn (N, 3, H, W) uint8 crops into RGB pictures, one colour mapping everywhere.

The mapping is `cp2image.channels.CHANNEL_COLOURS` (DNA → blue, β-tubulin → red,
F-actin → green, as in the paper's figures): each channel's intensity in [0, 1]
multiplies its colour and the coloured channels are added, then clipped to [0, 1].
Every panel and the app call these functions, so a picture of the same crop looks
the same wherever it appears.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cp2image.channels import CHANNEL_COLOURS, CHANNELS


def _check_images(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim == 3:  # a single crop (3, H, W)
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[1] != len(CHANNELS):
        raise ValueError(
            f"images must have shape (N, {len(CHANNELS)}, H, W) in channel order {CHANNELS}; got {arr.shape}"
        )
    return arr


def _channel_indices(channels: Sequence[str] | str | None) -> list[int]:
    if channels is None:
        return list(range(len(CHANNELS)))
    if isinstance(channels, str):
        channels = [channels]
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; choose from {list(CHANNELS)}")
    if not channels:
        raise ValueError(f"channels is empty; choose one or more of {list(CHANNELS)}")
    return [CHANNELS.index(c) for c in channels]


def display_scale(images: np.ndarray, *, percentile: float = 99.5) -> np.ndarray:
    """Per-channel divisors (3,) that map the `percentile` of each channel over ALL crops to 1.

    One divisor per channel shared by every crop, so brightness stays comparable
    across a strip (a dim generated cell stays dimmer than a bright one).
    """
    arr = _check_images(images).astype(np.float32) / 255.0
    tops = np.percentile(arr, percentile, axis=(0, 2, 3))
    return np.where(tops > 1e-6, tops, 1.0).astype(np.float32)


def composite(
    images: np.ndarray,
    channels: Sequence[str] | str | None = None,
    *,
    stretch: bool = False,
) -> np.ndarray:
    """Colour composite (N, H, W, 3) uint8 of the chosen channels (default all three).

    `stretch=True` rescales each channel by `display_scale` (shared across the crops)
    for display; the default shows the raw intensities.
    """
    arr = _check_images(images)
    idx = _channel_indices(channels)
    data = arr.astype(np.float32) / 255.0  # (N, 3, H, W)
    if stretch:
        data = data / display_scale(arr)[None, :, None, None]
    out = np.zeros((arr.shape[0], arr.shape[2], arr.shape[3], 3), dtype=np.float32)
    for i in idx:
        colour = np.asarray(CHANNEL_COLOURS[CHANNELS[i]], dtype=np.float32)
        out += data[:, i, :, :, None] * colour[None, None, None, :]
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def single_channel(
    images: np.ndarray,
    channel: str,
    *,
    coloured: bool = False,
    stretch: bool = False,
) -> np.ndarray:
    """One channel as (N, H, W, 3) uint8: grey by default, or tinted with its colour."""
    if coloured:
        return composite(images, [channel], stretch=stretch)
    arr = _check_images(images)
    (i,) = _channel_indices([channel])
    data = arr[:, i].astype(np.float32) / 255.0
    if stretch:
        data = data / display_scale(arr)[i]
    grey = (np.clip(data, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)

"""Raw microscope intensities (usually 16-bit) → uint8 crops.

Two rules, both applied per channel and per image (a field of view, or a crop
when that is all there is):

- ``max``: divide by the image's maximum, ``out = round(255 · x / max(x))``. This is
  the per-image max normalisation of the original CP2Image work: it removes
  exposure and staining differences between images but keeps every intensity
  ratio *within* an image, so brighter nuclei stay brighter. An all-zero channel
  stays zero.
- ``percentile``: stretch ``[p_low, p_high]`` percentiles to ``[0, 255]`` and clip,
  ``out = round(255 · clip((x - lo) / (hi - lo), 0, 1))``. Robust to a few
  saturated or hot pixels, which would otherwise set the scale under ``max``.
  A channel with ``hi <= lo`` (flat) becomes zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Method = Literal["max", "percentile"]
METHODS: tuple[str, ...] = ("max", "percentile")


@dataclass(frozen=True)
class IntensityConfig:
    """How raw intensities become uint8."""

    method: Method = "max"  # "max" (original work) or "percentile"
    low_percentile: float = 0.1  # percentile mapped to 0 (method="percentile")
    high_percentile: float = 99.9  # percentile mapped to 255 (method="percentile")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"intensity method must be one of {METHODS}, got {self.method!r}")
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ValueError(
                "percentiles must satisfy 0 <= low < high <= 100, got "
                f"low={self.low_percentile}, high={self.high_percentile}"
            )


def _check_raw(image: np.ndarray) -> None:
    if image.dtype.kind not in "uif":
        raise ValueError(f"raw image has dtype {image.dtype}; expected an integer or float intensity image")


def channel_limits(image: np.ndarray, config: IntensityConfig, *, channel_axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (lo, hi) intensities that map to 0 and 255.

    `image` holds one image with channels along `channel_axis` (every other axis
    is spatial). Returns two float64 arrays of length n_channels.
    """
    _check_raw(image)
    moved = np.moveaxis(np.asarray(image), channel_axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    if config.method == "max":
        hi = flat.max(axis=1).astype(np.float64)
        lo = np.zeros_like(hi)
    else:
        lo, hi = np.percentile(flat, [config.low_percentile, config.high_percentile], axis=1)
    return lo.astype(np.float64), hi.astype(np.float64)


def apply_limits(image: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, channel_axis: int = 0) -> np.ndarray:
    """Map `[lo, hi]` of each channel to `[0, 255]` (clipped, rounded) as uint8.

    Channels with `hi <= lo` (nothing to stretch) become 0.
    """
    _check_raw(image)
    moved = np.moveaxis(np.asarray(image), channel_axis, 0)
    shape = (-1,) + (1,) * (moved.ndim - 1)
    out = _scale(moved, np.asarray(lo).reshape(shape), np.asarray(hi).reshape(shape))
    return np.moveaxis(out, 0, channel_axis)


def _scale(image: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """round(255 · clip((x - lo) / (hi - lo), 0, 1)); 0 where hi <= lo (broadcast limits)."""
    lo = lo.astype(np.float64)
    span = hi.astype(np.float64) - lo
    flat = span <= 0
    scaled = (image.astype(np.float64) - lo) / np.where(flat, 1.0, span)
    scaled = np.where(flat, 0.0, np.clip(scaled, 0.0, 1.0))
    return np.floor(scaled * 255.0 + 0.5).astype(np.uint8)


def to_uint8(image: np.ndarray, config: IntensityConfig = IntensityConfig(), *, channel_axis: int = 0) -> np.ndarray:
    """Normalise one multi-channel image with its own per-channel limits."""
    lo, hi = channel_limits(image, config, channel_axis=channel_axis)
    return apply_limits(image, lo, hi, channel_axis=channel_axis)


def batch_to_uint8(images: np.ndarray, config: IntensityConfig = IntensityConfig()) -> np.ndarray:
    """Normalise a batch (N, C, H, W), each image with its own per-channel limits."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {images.shape}")
    _check_raw(images)
    flat = images.reshape(images.shape[0], images.shape[1], -1)
    if config.method == "max":
        hi = flat.max(axis=2).astype(np.float64)
        lo = np.zeros_like(hi)
    else:
        lo, hi = np.percentile(flat, [config.low_percentile, config.high_percentile], axis=2)
    return _scale(images, lo[:, :, None, None], hi[:, :, None, None])


__all__ = ["IntensityConfig", "METHODS", "channel_limits", "apply_limits", "to_uint8", "batch_to_uint8"]

"""Crops that hold no cell: a check at ingest.

Why: per-image-max normalisation stretches an empty field into full-range noise. In the shared BBBC021 archives 33
of 5,517 crops (all taxol at 0.3 µM, on plates Week7_34381 and Week2_24381) are such noise. Segmentation still finds a small "nucleus" in them, so their
features are finite and nothing downstream notices. A crop of a cell has spatial structure in at least one channel:
neighbouring pixels are strongly correlated (lag-1 autocorrelation ≥ 0.96 in 99 % of the real crops, ≥ 0.97 in every
simulated one), while noise has none (< 0.4 in every empty crop found).
"""
from __future__ import annotations

import numpy as np

EMPTY_CROP_COLUMN = "Metadata_EmptyCrop"  # True where no channel of the crop shows spatial structure
EMPTY_CROP_THRESHOLD = 0.5  # structure score below which a crop counts as empty


def structure_score(images: np.ndarray) -> np.ndarray:
    """Per crop of (N, C, H, W): the largest over channels of the lag-1 spatial autocorrelation (0 for a flat channel)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(f"expected crops of shape (N, C, H, W) with H, W ≥ 2, got {x.shape}")
    centred = x - x.mean(axis=(2, 3), keepdims=True)
    var = (centred ** 2).mean(axis=(2, 3))
    down = (centred[:, :, 1:, :] * centred[:, :, :-1, :]).mean(axis=(2, 3))
    across = (centred[:, :, :, 1:] * centred[:, :, :, :-1]).mean(axis=(2, 3))
    score = np.where(var > 0, (down + across) / 2 / np.where(var > 0, var, 1.0), 0.0)
    return score.max(axis=1) if len(x) else np.zeros(0)


def empty_crops(images: np.ndarray, threshold: float = EMPTY_CROP_THRESHOLD) -> np.ndarray:
    """Boolean mask: crops whose every channel is noise or flat."""
    return structure_score(images) < threshold

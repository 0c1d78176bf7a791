"""Drawn test cells and stub generators obeying the three model protocols (tests only).

Cells are ellipses (nucleus in DNA, larger cell body in tubulin/actin) whose size
depends on their class, so features and labels carry real signal. Stubs return
known images (the originals, a permutation of them, blanks), which makes the
expected metrics analytic: copying gives r = 1 and distance 0, permuting keeps the
distribution (distance 0) but destroys pairing (r ≈ 0).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cp2image.channels import CROP_SIZE
from cp2image.data.dataset import Dataset

CLASSES = {"DMSO": (7.0, 1.8), "Big nuclei": (10.5, 1.6), "Small cells": (6.0, 1.3)}  # nucleus radius, cell ratio


def draw_cells(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    size = CROP_SIZE
    yy, xx = np.mgrid[:size, :size].astype(float)
    c = (size - 1) / 2
    names = list(CLASSES)
    labels = [names[i % len(names)] for i in range(n)]
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for i, label in enumerate(labels):
        r_nuc, ratio = CLASSES[label]
        a, b = r_nuc * rng.uniform(0.8, 1.25), r_nuc * rng.uniform(0.7, 1.0)
        t = rng.uniform(0, np.pi)
        u = (yy - c) * np.cos(t) - (xx - c) * np.sin(t)
        v = (yy - c) * np.sin(t) + (xx - c) * np.cos(t)
        nucleus = (u / a) ** 2 + (v / b) ** 2 <= 1
        cell = (u / (a * ratio)) ** 2 + (v / (b * ratio * rng.uniform(0.9, 1.2))) ** 2 <= 1
        dna = rng.uniform(120, 230)
        img = np.stack([
            10 + dna * nucleus,
            10 + rng.uniform(60, 120) * cell * (0.8 + 0.4 * rng.random((size, size))),
            10 + rng.uniform(60, 120) * cell * (0.8 + 0.4 * rng.random((size, size))),
        ]) + rng.normal(0, 3, (3, size, size))
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    return images, labels


class CopyGenerator:
    """Conditional stub: returns the original crop of each requested cell (optionally permuted)."""

    def __init__(self, dataset: Dataset, *, permute_seed: int | None = None) -> None:
        self.images = np.asarray(dataset.images)
        self.feature_names = ["Metadata_Row"]
        self.permute_seed = permute_seed

    def generate(self, frame: pd.DataFrame, *, batch_size: int = 256) -> np.ndarray:
        rows = frame["Metadata_Row"].to_numpy()
        if self.permute_seed is not None:
            rows = np.random.default_rng(self.permute_seed).permutation(rows)
        return self.images[rows].copy()


class IdentityAutoencoder:
    """Reconstruction stub: a perfect autoencoder."""

    def reconstruct(self, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        return np.asarray(images).copy()


class BlankAutoencoder:
    """Reconstruction stub whose images are black: nothing can be segmented."""

    def reconstruct(self, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        return np.zeros_like(np.asarray(images))


class DrawingSampler:
    """Unconditional stub: draws fresh cells of the same kind."""

    def sample(self, n: int, *, seed: int = 0) -> np.ndarray:
        return draw_cells(n, seed=1000 + seed)[0]

"""Helpers: a tiny synthetic dataset (blobs whose size and brightness are the features) for trainer tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.data.dataset import write_dataset
from cp2image.training.config import TrainConfig

FEATURES = ["Nuclei_AreaShape_Area", "Nuclei_Intensity_MeanIntensity_DNA", "Cells_AreaShape_Area",
            "Cells_Intensity_MeanIntensity_Actin"]


def tiny_run_config(**overrides) -> TrainConfig:
    """A 2-step CP2Image run on blob crops: 4 base filters, every γ on from step 0, quiet, seeded."""
    base = dict(steps=2, batch_size=8, base_filters=4, kernel_size=3, gamma=[0.1] * 5, gamma_delay=[0] * 5,
                gamma_ramp=[2] * 5, log_every=1, grid_every=10, checkpoint_every=10, grid_cells=4,
                progress=False, seed=0)
    base.update(overrides)
    return TrainConfig(**base)


def blob_dataset(path: Path, *, n: int = 48, size: int = 32, seed: int = 0, moa: list[str] | None = None) -> Path:
    """n crops: DNA disc of radius r and brightness b, actin ring; features measured analytically.
    `moa` (n labels) adds a Metadata_MoA column, e.g. an imbalanced mix for class-balanced sampling."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    dist = np.hypot(yy, xx)
    radius = rng.uniform(size * 0.12, size * 0.3, n)
    bright = rng.uniform(0.4, 1.0, n)
    actin = rng.uniform(0.2, 0.8, n)
    images = np.zeros((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        nucleus = dist <= radius[i]
        cell = dist <= radius[i] * 1.6
        images[i, 0] = np.round(255 * bright[i] * nucleus)
        images[i, 1] = np.round(255 * 0.5 * cell)
        images[i, 2] = np.round(255 * actin[i] * (cell & ~nucleus))
    cells = pd.DataFrame({
        "Metadata_Plate": "P1", "Metadata_Well": [f"A{i % 4:02d}" for i in range(n)],
        "Metadata_Compound": "DMSO", "Metadata_Concentration": 0.0,
        "Metadata_Split": np.where(np.arange(n) < n - 8, "train", "test"),
        FEATURES[0]: np.pi * radius ** 2, FEATURES[1]: bright,
        FEATURES[2]: np.pi * (1.6 * radius) ** 2, FEATURES[3]: actin,
    })
    if moa is not None:
        cells["Metadata_MoA"] = list(moa)
    return write_dataset(path, images, cells, {"provenance": {"source": "tests/training blob_dataset"}})



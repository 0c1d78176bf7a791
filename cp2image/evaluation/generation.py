"""Get images from any model kind for the held-out cells, and say whether they pair up.

Three kinds of model are evaluated, as in the paper's Table 1:
- conditional (CP2Image): `generate(profiles)` — image i is generated from cell i's
  CellProfiler profile, so it pairs with original image i;
- reconstruction (VAE, VAEplus): `reconstruct(images)` — image i is the model's
  reconstruction of original image i, so it pairs too;
- unconditional (LSGAN): `sample(n, seed=)` — random images, no pairing; the
  per-feature correlation and MoA fidelity are then undefined and reported as such.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CONDITIONAL = "conditional"
RECONSTRUCTION = "reconstruction"
UNCONDITIONAL = "unconditional"


@dataclass
class GeneratedImages:
    images: np.ndarray  # uint8 (N, 3, H, W)
    mode: str  # conditional | reconstruction | unconditional
    paired: bool  # image i corresponds to held-out cell i


def model_mode(model: object) -> str:
    """Which of the three protocols a model follows."""
    if hasattr(model, "feature_names") and callable(getattr(model, "generate", None)):
        return CONDITIONAL
    if callable(getattr(model, "reconstruct", None)):
        return RECONSTRUCTION
    if callable(getattr(model, "sample", None)):
        return UNCONDITIONAL
    raise TypeError(
        f"{type(model).__name__} has none of generate(profiles) with feature_names, reconstruct(images) "
        "or sample(n); cannot evaluate it"
    )


def generate_for_cells(
    model: object,
    cells: pd.DataFrame,
    images: np.ndarray,
    *,
    batch_size: int = 256,
    seed: int = 0,
) -> GeneratedImages:
    """Images for the given held-out cells (profiles in `cells`, originals in `images`)."""
    mode = model_mode(model)
    if mode == CONDITIONAL:
        out = model.generate(cells, batch_size=batch_size)
    elif mode == RECONSTRUCTION:
        out = model.reconstruct(np.asarray(images), batch_size=batch_size)
    else:
        out = model.sample(len(cells), seed=seed)
    out = np.asarray(out)
    if out.dtype != np.uint8 or out.ndim != 4 or len(out) != len(cells):
        raise ValueError(
            f"{type(model).__name__} returned {out.dtype} {out.shape}; expected uint8 ({len(cells)}, C, H, W)"
        )
    if out.shape[1:] != tuple(images.shape[1:]):
        raise ValueError(f"generated images are {out.shape[1:]} but the dataset's crops are {images.shape[1:]}")
    return GeneratedImages(images=out, mode=mode, paired=mode != UNCONDITIONAL)


__all__ = ["GeneratedImages", "generate_for_cells", "model_mode", "CONDITIONAL", "RECONSTRUCTION", "UNCONDITIONAL"]

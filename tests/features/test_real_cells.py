"""Segmentation and measurement on real BBBC021 crops (skipped when ../shared is absent)."""
from __future__ import annotations

import numpy as np

from cp2image.features import FAILED_COLUMN, feature_names, measure


def _to_uint8(raw: np.ndarray) -> np.ndarray:
    """(N, 68, 68, 3) uint16 → (N, 3, 68, 68) uint8, each crop/channel scaled to its max."""
    x = raw.astype(np.float32).transpose(0, 3, 1, 2)
    peak = x.reshape(len(x), 3, -1).max(axis=2)[:, :, None, None]
    return np.clip(np.rint(x / np.maximum(peak, 1.0) * 255.0), 0, 255).astype(np.uint8)


def test_real_cells_are_segmented_and_measured(real_cells_npz):
    with np.load(real_cells_npz, allow_pickle=False) as data:
        raw = data["images"][::20]  # every 20th crop: ~210 cells from all plates
    frame = measure(_to_uint8(raw))
    ok = ~frame[FAILED_COLUMN]
    assert ok.mean() >= 0.9
    good = frame.loc[ok, feature_names()]
    assert good.isna().mean().max() < 0.05  # no feature is mostly undefined on segmented cells
    # real MCF-7 nuclei at 0.65 µm/px: hundreds of pixels, smaller than their cells
    assert 300 < good["Nuclei_AreaShape_Area"].median() < 2500
    assert (good["Cells_AreaShape_Area"] > good["Nuclei_AreaShape_Area"]).all()

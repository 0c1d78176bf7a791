"""Finding the nuclei of a whole field and cropping around them: two pure per-field functions.

No I/O and no shared state, so a scheduler can map them over fields:

- `find_nuclei(raw, ...)` → centres (centroid of each nucleus mask, 0-based x/y
  pixels, as CellProfiler's ``Location_Center_X/Y``) and areas. It runs the nucleus
  step of `cp2image.features.segment_batch` (`label_nuclei`: Gaussian smoothing,
  Otsu threshold, hole filling, declumping of touching nuclei, debris under
  ``min_nucleus_area`` removed) on the field's DNA channel scaled to uint8 like the
  crops: the same segmentation `measure` applies to every crop, so a nucleus found
  here is the one the crop's features describe.
- `crop_field(raw, nuclei, ...)` → uint8 crops centred on them. A window must lie
  wholly inside the field; that also drops every nucleus cut by the field edge,
  whose centroid lies closer to the edge than half a crop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from cp2image.channels import CHANNELS
from cp2image.data.ingest.field_images import crop_windows
from cp2image.data.intensity import IntensityConfig, apply_limits, batch_to_uint8, channel_limits


@dataclass
class Nuclei:
    """Nuclei found in one field: centroid (x = column, y = row; 0-based px) and area (px)."""

    x: np.ndarray
    y: np.ndarray
    area: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def find_nuclei(raw: np.ndarray, *, intensity: IntensityConfig | None = None, segmentation=None) -> Nuclei:
    """Every nucleus of a raw field (3, H, W) in `CHANNELS` order (only DNA is used).

    The DNA plane is scaled to uint8 by `intensity` over the whole field (default:
    divided by its maximum), then labelled by `cp2image.features.segmentation.label_nuclei`
    with `segmentation` (a `SegmentationConfig`; default settings).
    """
    from cp2image.features.segmentation import label_nuclei

    dna = np.asarray(raw)[CHANNELS.index("DNA")]
    lo, hi = channel_limits(dna[None], intensity or IntensityConfig())
    dna8 = apply_limits(dna[None, None], lo, hi, channel_axis=1)[0, 0]  # (H, W) uint8
    labels, n = label_nuclei(dna8[None].astype(np.float32) / 255.0, config=segmentation)
    labels = labels[0]
    if n == 0:
        empty = np.zeros(0)
        return Nuclei(empty, empty.copy(), empty.copy())
    ids = np.arange(1, n + 1)
    centres = np.asarray(ndi.center_of_mass(np.ones_like(labels, dtype=np.float64), labels, ids))  # (n, 2) y, x
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.float64)
    return Nuclei(x=centres[:, 1], y=centres[:, 0], area=area)


def crop_field(
    raw: np.ndarray, nuclei: Nuclei, *, crop_size: int, intensity: IntensityConfig, scope: str = "field",
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 crops (n, 3, s, s) at the nuclei whose window fits in the field, and that mask.

    `scope="field"` scales intensities by limits of the whole field (default),
    `"crop"` by each crop's own.
    """
    raw = np.asarray(raw)
    x0, y0, inside, _ = crop_windows(nuclei.x, nuclei.y, height=raw.shape[1], width=raw.shape[2],
                                     crop_size=crop_size)
    if not inside.any():
        return np.zeros((0, len(CHANNELS), crop_size, crop_size), dtype=np.uint8), inside
    s = crop_size
    stack = np.stack([raw[:, y:y + s, x:x + s] for x, y in zip(x0[inside], y0[inside])])  # (n, 3, s, s)
    if scope == "field":
        lo, hi = channel_limits(raw, intensity)
        return apply_limits(stack, lo, hi, channel_axis=1), inside
    return batch_to_uint8(stack, intensity), inside



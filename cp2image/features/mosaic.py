"""Tile a batch of crops into one large image so a measurement runs once per batch.

CellProfiler's measurement code (and cp_measure, which packages it) is
vectorised over the objects of one label image, but pays a fixed cost per call.
Measuring 68×68 crops one call at a time is dominated by that cost; tiling
many crops side by side, each crop's object carrying its own label, measures
them all in one call. Tiles are separated by a zero gutter wide enough that no
neighbourhood operation (edges, texture offsets, granularity openings) mixes
two crops. Position-dependent outputs (centres, bounding-box corners) are
meaningless on a mosaic and are never reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Mosaic:
    """Images (C, Y, X) float and per-compartment label images (Y, X) int32."""

    pixels: np.ndarray
    labels: dict[str, np.ndarray]
    n_objects: int
    tile: int  # tile edge including the gutter


def build_mosaic(images: np.ndarray, masks: dict[str, np.ndarray], *, gutter: int = 12) -> Mosaic:
    """Lay out (N, C, H, W) float crops and (N, H, W) masks on a near-square grid.

    Object k (0-based, crop order) gets label k + 1 in every compartment.
    """
    n, c, h, w = images.shape
    cols = max(1, int(np.ceil(np.sqrt(n))))
    rows = max(1, int(np.ceil(n / cols)))
    th, tw = h + gutter, w + gutter
    pixels = np.zeros((c, rows * th + gutter, cols * tw + gutter), dtype=np.float64)
    labels = {name: np.zeros(pixels.shape[1:], dtype=np.int32) for name in masks}
    for k in range(n):
        r, q = divmod(k, cols)
        y0, x0 = gutter + r * th, gutter + q * tw
        pixels[:, y0 : y0 + h, x0 : x0 + w] = images[k]
        for name, m in masks.items():
            labels[name][y0 : y0 + h, x0 : x0 + w][m[k]] = k + 1
    return Mosaic(pixels=pixels, labels=labels, n_objects=n, tile=th)

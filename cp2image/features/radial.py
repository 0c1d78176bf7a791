"""RadialDistribution: how each channel's intensity is spread from an object's centre to its edge.

Re-implements CellProfiler's MeasureObjectIntensityDistribution (scaled bins,
object centre = the pixel farthest from the object's edge, first in raster
order) vectorised over a stack of crops, because cp_measure's version
recomputes the geometry for every channel (~0.9 ms per object and channel).
Geometry (distances, bins, wedges) is computed once per batch and reused for
every channel.

One documented difference: CellProfiler measures the distance from the centre
*along paths inside the object* (centrosome's propagate); here it is the
straight-line (Euclidean) distance. For the convex-ish cells of single-cell
crops both agree closely; the agreement test in tests/features states the
tolerance.

Per bin k of ``bins`` rings (1 = centre):
FracAtD = fraction of the object's total intensity in ring k;
MeanFrac = FracAtD / fraction of the object's pixels in ring k;
RadialCV = coefficient of variation of the mean intensity over 8 wedges of ring k.
Names: ``{Compartment}_RadialDistribution_{FracAtD|MeanFrac|RadialCV}_{Channel}_{k}of{bins}``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shape import edge_distance

MEASURES: tuple[str, ...] = ("FracAtD", "MeanFrac", "RadialCV")


def radial_columns(compartment: str, channels: tuple[str, ...], *, bins: int) -> list[str]:
    return [
        f"{compartment}_RadialDistribution_{m}_{ch}_{k}of{bins}"
        for ch in channels
        for k in range(1, bins + 1)
        for m in MEASURES
    ]


@dataclass
class RadialGeometry:
    """Per-pixel ring (bin) and wedge index of every object pixel in a stack."""

    obj: np.ndarray  # (P,) object index of each object pixel
    flat_index: np.ndarray  # (P,) index into the flattened (N*H*W) stack
    ring: np.ndarray  # (P,) 0..bins (bins = overflow, never hit with scaled bins)
    wedge: np.ndarray  # (P,) 0..7
    n: int
    bins: int


def radial_geometry(mask: np.ndarray, *, bins: int = 4, d_edge: np.ndarray | None = None) -> RadialGeometry:
    """Rings and wedges for one object per crop of an (N, H, W) bool stack.

    ``d_edge``: the stack's `shape.edge_distance` (distance to the nearest non-object
    pixel, no distance crossing crops), computed here when not given.
    """
    n, h, w = mask.shape
    if d_edge is None:
        d_edge = edge_distance(mask)
    flat = d_edge.reshape(n, -1)
    centre = np.argmax(np.where(mask.reshape(n, -1), flat, -1.0), axis=1)  # first maximum in C order
    ci, cj = np.divmod(centre, w)
    idx = np.flatnonzero(mask.ravel())
    obj, rem = np.divmod(idx, h * w)
    i, j = np.divmod(rem, w)
    di = i - ci[obj]
    dj = j - cj[obj]
    d_centre = np.hypot(di, dj)
    norm = d_centre / (d_centre + d_edge.ravel()[idx] + 0.001)
    ring = np.minimum((norm * bins).astype(np.int64), bins)
    wedge = (di > 0).astype(np.int64) + 2 * (dj > 0) + 4 * (np.abs(di) > np.abs(dj))
    return RadialGeometry(obj=obj, flat_index=idx, ring=ring, wedge=wedge, n=n, bins=bins)


def radial_distribution(pixels: np.ndarray, geo: RadialGeometry) -> dict[str, np.ndarray]:
    """FracAtD / MeanFrac / RadialCV, each (N, bins), for one channel (N, H, W) float."""
    n, B = geo.n, geo.bins
    v = pixels.ravel()[geo.flat_index].astype(np.float64)
    key = geo.obj * (B + 1) + geo.ring
    inten = np.bincount(key, weights=v, minlength=n * (B + 1)).reshape(n, B + 1)
    count = np.bincount(key, minlength=n * (B + 1)).reshape(n, B + 1).astype(np.float64)
    wkey = key * 8 + geo.wedge
    w_sum = np.bincount(wkey, weights=v, minlength=n * (B + 1) * 8).reshape(n, B + 1, 8)
    w_cnt = np.bincount(wkey, minlength=n * (B + 1) * 8).reshape(n, B + 1, 8)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = inten / inten.sum(1, keepdims=True)
        frac_px = count / count.sum(1, keepdims=True)
        mean_frac = frac / (frac_px + np.finfo(float).eps)
        present = w_cnt > 0
        k = present.sum(2)
        wmean = np.where(present, w_sum / np.where(present, w_cnt, 1), 0.0)
        mu = wmean.sum(2) / k
        sd = np.sqrt(np.where(present, (wmean - mu[..., None]) ** 2, 0.0).sum(2) / k)
        cv = sd / mu
    cv = np.where(k == 0, 0.0, cv)
    return {"FracAtD": frac[:, :B], "MeanFrac": mean_frac[:, :B], "RadialCV": cv[:, :B]}


def measure_radial(
    x: np.ndarray, masks: dict[str, np.ndarray], channels: tuple[str, ...], *, bins: int = 4,
    edge: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """RadialDistribution columns for the compartments in ``masks`` on x (N, C, H, W) float.

    ``edge``: precomputed `shape.edge_distance` per compartment (optional).
    """
    out: dict[str, np.ndarray] = {}
    for comp, mask in masks.items():
        geo = radial_geometry(mask, bins=bins, d_edge=(edge or {}).get(comp))
        empty = ~mask.reshape(mask.shape[0], -1).any(1)
        for c, ch in enumerate(channels):
            res = radial_distribution(x[:, c], geo)
            for m in MEASURES:
                vals = np.where(empty[:, None], np.nan, res[m])
                for k in range(bins):
                    out[f"{comp}_RadialDistribution_{m}_{ch}_{k + 1}of{bins}"] = vals[:, k]
    return out

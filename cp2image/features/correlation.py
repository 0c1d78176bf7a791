"""Correlation: colocalisation of each channel pair inside each object.

A vectorised re-implementation of CellProfiler's MeasureColocalization (as
packaged by cp_measure, which loops over objects in Python): Pearson
correlation and slope, Manders' coefficients, overlap, K and rank-weighted
colocalisation (RWC), all computed for every object of a batch with
``np.bincount`` over the object index. Thresholds are CellProfiler's: a pixel
counts for channel c when it is ≥ ``thr``% of that channel's maximum inside
the object. Costes' automatic threshold (an iterative search per object, the
slowest measurement in CellProfiler) is left out.
Agreement with cp_measure is tested in tests/features.

Names: ``{Compartment}_Correlation_{Measure}_{A}_{B}``; the directed measures
(Manders, RWC, K) also have ``_{B}_{A}``, as in CellProfiler.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from .segments import Segments

SYMMETRIC: tuple[str, ...] = ("Correlation", "Slope", "Overlap")
DIRECTED: tuple[str, ...] = ("Manders", "RWC", "K")


def channel_pairs(channels: tuple[str, ...]) -> list[tuple[int, int]]:
    return list(combinations(range(len(channels)), 2))


def correlation_columns(compartment: str, channels: tuple[str, ...], *, measures: tuple[str, ...]) -> list[str]:
    cols = []
    for a, b in channel_pairs(channels):
        A, B = channels[a], channels[b]
        for m in measures:
            cols.append(f"{compartment}_Correlation_{m}_{A}_{B}")
            if m in DIRECTED:
                cols.append(f"{compartment}_Correlation_{m}_{B}_{A}")
    return cols


def _segment_max(obj: np.ndarray, v: np.ndarray, n: int, empty: float) -> np.ndarray:
    """Max of v per object; obj must be sorted ascending (as np.nonzero returns it)."""
    out = np.full(n, empty, dtype=np.float64)
    if obj.size == 0:
        return out
    starts = np.flatnonzero(np.r_[True, obj[1:] != obj[:-1]])
    out[obj[starts]] = np.maximum.reduceat(v, starts)
    return out


def _dense_ranks_levels(obj: np.ndarray, levels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense ranks for integer grey levels 0..255 from a per-object presence table (no sort),
    and each object's largest rank (−1 for an object without pixels)."""
    flat = obj * 256 + levels
    present = np.zeros(n * 256, dtype=np.int64)
    present[flat] = 1
    rank_of = np.cumsum(present.reshape(n, 256), axis=1) - 1
    return rank_of.ravel()[flat], rank_of[:, -1]


def _dense_ranks(obj: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rank of each value among distinct values of its own object (0 = smallest)."""
    order = np.lexsort((v, obj))
    o_s, v_s = obj[order], v[order]
    new_obj = np.r_[True, o_s[1:] != o_s[:-1]]
    step = np.r_[False, (v_s[1:] != v_s[:-1]) & ~new_obj[1:]].astype(np.int64)
    csum = np.cumsum(step)
    start = np.maximum.accumulate(np.where(new_obj, np.arange(o_s.size), 0))
    ranks_sorted = csum - csum[start]
    ranks = np.empty_like(ranks_sorted)
    ranks[order] = ranks_sorted
    return ranks


class _Channel:
    """Per-pixel quantities of one channel inside one compartment, reused by every pair."""

    def __init__(self, img: np.ndarray, mask: np.ndarray, seg: Segments, thr: float):
        obj, n = seg.obj, seg.n
        integer = img.dtype == np.uint8
        raw = img[mask]
        self.v = raw.astype(np.float64) / 255.0 if integer else raw.astype(np.float64)
        self.mean = seg.sum(self.v) / seg.count
        self.dev = self.v - seg.spread(self.mean)
        self.var = seg.sum(self.dev * self.dev)
        vmax = _segment_max(obj, self.v, n, np.nan)
        self.on = self.v >= seg.spread((thr / 100.0) * vmax)
        self.total_on = seg.sum(self.v * self.on)
        if integer:
            self.rank, top = _dense_ranks_levels(obj, raw, n)
        else:
            self.rank = _dense_ranks(obj, self.v)
            top = _segment_max(obj, self.rank.astype(np.float64), n, 0.0)
        self.top_rank = np.maximum(top, 0).astype(np.float64)  # per object; 0 where it has no pixels
        self.rank_f = self.rank.astype(np.float64)  # exact (ranks < 2**53); converted once, not per pair


def _pair(f: _Channel, s: _Channel, seg: Segments) -> dict[str, np.ndarray]:
    obj, n, S = seg.obj, seg.n, seg.sum
    cov = S(f.dev * s.dev)
    corr = cov / np.sqrt(f.var * s.var)
    slope = cov / f.var
    both = f.on & s.on
    if seg.starts is not None:  # every object has pixels: contiguous runs
        any_both = np.logical_or.reduceat(both, seg.starts)
    else:
        any_both = np.bincount(obj[both], minlength=n) > 0
    fb, sb = f.v * both, s.v * both
    m1 = S(fb) / f.total_on
    m2 = S(sb) / s.total_on
    fpsq, spsq, prod = S(fb * f.v), S(sb * s.v), S(fb * s.v)
    overlap = prod / np.sqrt(fpsq * spsq)
    k1, k2 = prod / fpsq, prod / spsq
    R = seg.spread(np.maximum(f.top_rank, s.top_rank)) + 1.0  # the pair's largest rank in the object, + 1
    weight = (R - np.abs(f.rank_f - s.rank_f)) / R
    rwc1 = S(fb * weight) / f.total_on
    rwc2 = S(sb * weight) / s.total_on
    out = {
        "Correlation": corr, "Slope": slope, "Overlap": overlap, "K_1": k1, "K_2": k2,
        "Manders_1": m1, "Manders_2": m2, "RWC_1": rwc1, "RWC_2": rwc2,
    }
    # CellProfiler reports 0 for the thresholded measures when no pixel is above both thresholds
    for key in ("Overlap", "K_1", "K_2", "Manders_1", "Manders_2", "RWC_1", "RWC_2"):
        out[key] = np.where(any_both, out[key], 0.0)
    return out


def colocalisation_pairs(
    images: np.ndarray, mask: np.ndarray, pairs: list[tuple[int, int]], *, thr: float = 15.0
) -> dict[tuple[int, int], dict[str, np.ndarray]]:
    """`colocalisation` for several channel pairs of images (N, C, H, W), sharing per-channel work."""
    n = images.shape[0]
    obj = np.nonzero(mask)[0]
    empty = np.bincount(obj, minlength=n) == 0
    out: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        seg = Segments(obj, n)
        chans = {c: _Channel(images[:, c], mask, seg, thr) for c in sorted({c for p in pairs for c in p})}
        for a, b in pairs:
            res = _pair(chans[a], chans[b], seg)
            out[(a, b)] = {k: np.where(empty, np.nan, v) for k, v in res.items()}
    return out


def colocalisation(
    f: np.ndarray, s: np.ndarray, mask: np.ndarray, *, thr: float = 15.0
) -> dict[str, np.ndarray]:
    """Per-object colocalisation of images f and s (N, H, W) inside mask (N, H, W).

    f and s are uint8 (scaled to [0, 1] here, as CellProfiler does) or float.

    Returns arrays of length N keyed Correlation, Slope, Overlap, K_1, K_2,
    Manders_1, Manders_2, RWC_1, RWC_2 (``_1`` = f's coefficient, ``_2`` = s's).
    """
    if f.dtype != s.dtype:
        f, s = f.astype(np.float64) / (255.0 if f.dtype == np.uint8 else 1.0), s.astype(np.float64) / (255.0 if s.dtype == np.uint8 else 1.0)
    return colocalisation_pairs(np.stack([f, s], axis=1), mask, [(0, 1)], thr=thr)[(0, 1)]


def measure_correlation(
    x: np.ndarray,
    masks: dict[str, np.ndarray],
    channels: tuple[str, ...],
    *,
    measures: tuple[str, ...],
    thr: float = 15.0,
) -> dict[str, np.ndarray]:
    """Correlation columns for each compartment and channel pair of x (N, C, H, W) uint8 or float."""
    out: dict[str, np.ndarray] = {}
    pairs = channel_pairs(channels)
    for comp, mask in masks.items():
        results = colocalisation_pairs(x, mask, pairs, thr=thr)
        for (a, b), res in results.items():
            A, B = channels[a], channels[b]
            for m in measures:
                if m in DIRECTED:
                    out[f"{comp}_Correlation_{m}_{A}_{B}"] = res[f"{m}_1"]
                    out[f"{comp}_Correlation_{m}_{B}_{A}"] = res[f"{m}_2"]
                else:
                    out[f"{comp}_Correlation_{m}_{A}_{B}"] = res[m]
    return out

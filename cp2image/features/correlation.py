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


def _dense_ranks_levels(obj: np.ndarray, levels: np.ndarray, n: int) -> np.ndarray:
    """Dense ranks for integer grey levels 0..255: a per-object presence table, no sort."""
    present = np.zeros((n, 256), dtype=np.int64)
    present[obj, levels] = 1
    rank_of = np.cumsum(present, axis=1) - 1
    return rank_of[obj, levels]


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


def colocalisation(
    f: np.ndarray, s: np.ndarray, mask: np.ndarray, *, thr: float = 15.0
) -> dict[str, np.ndarray]:
    """Per-object colocalisation of images f and s (N, H, W) inside mask (N, H, W).

    f and s are uint8 (scaled to [0, 1] here, as CellProfiler does) or float.

    Returns arrays of length N keyed Correlation, Slope, Overlap, K_1, K_2,
    Manders_1, Manders_2, RWC_1, RWC_2 (``_1`` = f's coefficient, ``_2`` = s's).
    """
    n = f.shape[0]
    obj = np.nonzero(mask)[0]
    integer = f.dtype == np.uint8 and s.dtype == np.uint8
    fl, sl = f[mask], s[mask]
    fi = fl.astype(np.float64) / 255.0 if integer else fl.astype(np.float64)
    si = sl.astype(np.float64) / 255.0 if integer else sl.astype(np.float64)
    cnt = np.bincount(obj, minlength=n).astype(np.float64)
    S = lambda v: np.bincount(obj, weights=v, minlength=n)  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        mf, ms = S(fi) / cnt, S(si) / cnt
        df, ds = fi - mf[obj], si - ms[obj]
        cov, vf, vs = S(df * ds), S(df * df), S(ds * ds)
        corr = cov / np.sqrt(vf * vs)
        slope = cov / vf
        fmax = _segment_max(obj, fi, n, np.nan)
        smax = _segment_max(obj, si, n, np.nan)
        f_on = fi >= (thr / 100.0) * fmax[obj]
        s_on = si >= (thr / 100.0) * smax[obj]
        both = f_on & s_on
        any_both = S(both.astype(np.float64)) > 0
        tot_f, tot_s = S(fi * f_on), S(si * s_on)
        m1 = S(fi * both) / tot_f
        m2 = S(si * both) / tot_s
        fpsq, spsq, prod = S(fi * fi * both), S(si * si * both), S(fi * si * both)
        overlap = prod / np.sqrt(fpsq * spsq)
        k1, k2 = prod / fpsq, prod / spsq
        if integer:
            r1, r2 = _dense_ranks_levels(obj, fl, n), _dense_ranks_levels(obj, sl, n)
        else:
            r1, r2 = _dense_ranks(obj, fi), _dense_ranks(obj, si)
        R = _segment_max(obj, np.maximum(r1, r2).astype(np.float64), n, 0.0) + 1.0
        weight = (R[obj] - np.abs(r1 - r2)) / R[obj]
        rwc1 = S(fi * weight * both) / tot_f
        rwc2 = S(si * weight * both) / tot_s
    out = {
        "Correlation": corr, "Slope": slope, "Overlap": overlap, "K_1": k1, "K_2": k2,
        "Manders_1": m1, "Manders_2": m2, "RWC_1": rwc1, "RWC_2": rwc2,
    }
    # CellProfiler reports 0 for the thresholded measures when no pixel is above both thresholds
    for key in ("Overlap", "K_1", "K_2", "Manders_1", "Manders_2", "RWC_1", "RWC_2"):
        out[key] = np.where(any_both, out[key], 0.0)
    empty = cnt == 0
    for key in out:
        out[key] = np.where(empty, np.nan, out[key])
    return out


def measure_correlation(
    x: np.ndarray,
    masks: dict[str, np.ndarray],
    channels: tuple[str, ...],
    *,
    measures: tuple[str, ...],
    thr: float = 15.0,
) -> dict[str, np.ndarray]:
    """Correlation columns for each compartment and channel pair of x (N, C, H, W) float."""
    out: dict[str, np.ndarray] = {}
    for comp, mask in masks.items():
        for a, b in channel_pairs(channels):
            A, B = channels[a], channels[b]
            res = colocalisation(x[:, a], x[:, b], mask, thr=thr)
            for m in measures:
                if m in DIRECTED:
                    out[f"{comp}_Correlation_{m}_{A}_{B}"] = res[f"{m}_1"]
                    out[f"{comp}_Correlation_{m}_{B}_{A}"] = res[f"{m}_2"]
                else:
                    out[f"{comp}_Correlation_{m}_{A}_{B}"] = res[m]
    return out

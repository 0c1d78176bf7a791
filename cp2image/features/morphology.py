"""3×3 erosions of (N, H, W) stacks as a few shifted-slice operations.

scipy's ``binary_erosion`` / ``grey_erosion`` visit a footprint per pixel in a generic
loop; for the 3×3 footprints the feature groups use, AND / min of shifted slices gives
the same pixels (min and AND are exact, so values are identical, tested against scipy)
in a fraction of the time. Each image of the stack is eroded on its own: nothing
crosses from one crop to the next.
"""
from __future__ import annotations

import numpy as np

from .reconstruction import HAS_NUMBA, _jit


def erode_cross(mask: np.ndarray) -> np.ndarray:
    """Binary erosion by the 4-neighbour cross, outside the image counting as False.

    = ``ndi.binary_erosion(mask, structure=cross (1, 3, 3), border_value=0)``.
    """
    p = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    return p[:, 1:-1, 1:-1] & p[:, :-2, 1:-1] & p[:, 2:, 1:-1] & p[:, 1:-1, :-2] & p[:, 1:-1, 2:]


def erode_square(mask: np.ndarray) -> np.ndarray:
    """Binary erosion by the 3×3 square (8 neighbours), outside the image counting as False.

    = ``ndi.binary_erosion(mask, structure=ones (1, 3, 3), border_value=0)``; separable.
    """
    p = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    rows = p[:, :, :-2] & p[:, :, 1:-1] & p[:, :, 2:]
    return rows[:, :-2] & rows[:, 1:-1] & rows[:, 2:]


def grey_erode_cross_reflect(x: np.ndarray) -> np.ndarray:
    """Grey erosion by the 4-neighbour cross with scipy's ``mode="reflect"`` (edge pixel mirrored).

    = ``ndi.grey_erosion(x, footprint=cross (1, 3, 3), mode="reflect")``: a neighbour
    beyond the edge is the edge pixel itself, so it never lowers the minimum.
    Compiled with numba when available (one pass instead of five).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if HAS_NUMBA:
        return _grey_erode_cross_stack(x)
    out = x.copy()
    np.minimum(out[:, 1:], x[:, :-1], out=out[:, 1:])
    np.minimum(out[:, :-1], x[:, 1:], out=out[:, :-1])
    np.minimum(out[:, :, 1:], x[:, :, :-1], out=out[:, :, 1:])
    np.minimum(out[:, :, :-1], x[:, :, 1:], out=out[:, :, :-1])
    return out


def _grey_erode_cross_stack(x: np.ndarray) -> np.ndarray:
    n, h, w = x.shape
    out = np.empty_like(x)
    for k in range(n):
        for i in range(h):
            for j in range(w):
                v = x[k, i, j]
                if i > 0 and x[k, i - 1, j] < v:
                    v = x[k, i - 1, j]
                if i < h - 1 and x[k, i + 1, j] < v:
                    v = x[k, i + 1, j]
                if j > 0 and x[k, i, j - 1] < v:
                    v = x[k, i, j - 1]
                if j < w - 1 and x[k, i, j + 1] < v:
                    v = x[k, i, j + 1]
                out[k, i, j] = v
    return out


if HAS_NUMBA:
    _grey_erode_cross_stack = _jit(_grey_erode_cross_stack)

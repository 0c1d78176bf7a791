"""3×3 erosions and hole filling of (N, H, W) stacks, faster than scipy's generic loops.

scipy's ``binary_erosion`` / ``grey_erosion`` visit a footprint per pixel in a generic
loop; for the 3×3 footprints the feature groups use, AND / min of shifted slices gives
the same pixels (min and AND are exact, so values are identical, tested against scipy)
in a fraction of the time. Each image of the stack is eroded on its own: nothing
crosses from one crop to the next.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .reconstruction import HAS_NUMBA, _jit

_STACK_4 = np.zeros((3, 3, 3), dtype=bool)
_STACK_4[1] = ndi.generate_binary_structure(2, 1)


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


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Each image's holes filled: background not 4-connected to its border becomes object.

    = ``ndi.binary_fill_holes`` with 4-connectivity inside each image and none across
    images (the segmentation's rule for nuclei and cells). scipy propagates the outside
    inward by repeated binary dilation passes over the whole stack; compiled with numba,
    one flood fill per image from its border does the same.
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    if HAS_NUMBA:
        return _fill_holes_stack(mask)
    padded = np.pad(mask, ((1, 1), (0, 0), (0, 0)))
    return ndi.binary_fill_holes(padded, structure=_STACK_4)[1:-1]


def _fill_holes_stack(mask: np.ndarray) -> np.ndarray:
    n, h, w = mask.shape
    out = np.ones_like(mask)
    stack = np.empty(h * w, dtype=np.int64)
    for k in range(n):
        top = 0
        for i in range(h):  # background on the border: reached from outside
            for j in range(w):
                if (i == 0 or i == h - 1 or j == 0 or j == w - 1) and not mask[k, i, j] and out[k, i, j]:
                    out[k, i, j] = False
                    stack[top] = i * w + j
                    top += 1
        while top > 0:
            top -= 1
            p = stack[top]
            i = p // w
            j = p - i * w
            for d in range(4):
                y = i + (1 if d == 0 else (-1 if d == 1 else 0))
                x = j + (1 if d == 2 else (-1 if d == 3 else 0))
                if 0 <= y < h and 0 <= x < w and out[k, y, x] and not mask[k, y, x]:
                    out[k, y, x] = False
                    stack[top] = y * w + x
                    top += 1
    return out


if HAS_NUMBA:
    _fill_holes_stack = _jit(_fill_holes_stack)

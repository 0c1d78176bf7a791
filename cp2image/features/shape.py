"""AreaShape: size and shape of each compartment (CellProfiler MeasureObjectSizeShape).

Computed by cp_measure (CellProfiler's own code, packaged) on a mosaic of
crops. Position-dependent outputs (Center_*, BoundingBoxMinimum/Maximum_*) and
raw image moments are dropped: on a crop they describe where the crop was cut,
not the cell.

Orientation is CellProfiler's (via scikit-image): degrees in [-90, 90], the
angle between the image's row (y) axis and the major axis of the equivalent
ellipse. A major axis along (row, col) = (cos θ, sin θ) gives θ: 0° is
vertical, +45° the ↘ diagonal (top-left to bottom-right), −45° the ↗ diagonal,
±90° horizontal.
"""
from __future__ import annotations

import numpy as np
from cp_measure.primitives._moments import axes_eccentricity_orientation, inertia_2d
from scipy import ndimage as ndi

from .distance import edge_distance
from .morphology import erode_cross
from .hull import hull_measures, object_hulls
from .mosaic import Mosaic
from .zernike import zernike_moments

SIZESHAPE: tuple[str, ...] = (
    "Area", "Perimeter", "ConvexArea", "EquivalentDiameter", "MajorAxisLength",
    "MinorAxisLength", "Eccentricity", "Orientation", "FormFactor", "Extent",
    "Solidity", "Compactness", "EulerNumber", "MaximumRadius", "MeanRadius",
    "MedianRadius", "BoundingBoxArea", "MinFeretDiameter", "MaxFeretDiameter",
)
ZERNIKE_DEGREE = 9


def zernike_indexes(degree: int = ZERNIKE_DEGREE) -> list[tuple[int, int]]:
    """(n, m) with 0 ≤ m ≤ n ≤ degree, n − m even: CellProfiler's Zernike set (30 for 9)."""
    return [(n, m) for n in range(degree + 1) for m in range(n + 1) if (n - m) % 2 == 0]


def shape_columns(compartment: str, *, zernike: bool = True) -> list[str]:
    cols = [f"{compartment}_AreaShape_{m}" for m in SIZESHAPE]
    if zernike:
        cols += [f"{compartment}_AreaShape_Zernike_{n}_{m}" for n, m in zernike_indexes()]
    return cols


_CROSS = np.zeros((1, 3, 3), dtype=bool)
_CROSS[0] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
_STACK_8 = np.zeros((3, 3, 3), dtype=bool)
_STACK_8[1] = True
_STACK_4 = _CROSS.repeat(3, axis=0) & np.array([0, 1, 0], bool)[:, None, None]
# scikit-image's perimeter(neighborhood=4): border pixels coded by a 3×3 convolution, then weighted
_PERIM_KERNEL = np.array([[[10, 2, 10], [2, 1, 2], [10, 2, 10]]])
_PERIM_WEIGHTS = np.zeros(50)
_PERIM_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIM_WEIGHTS[[21, 33]] = np.sqrt(2.0)
_PERIM_WEIGHTS[[13, 23]] = (1.0 + np.sqrt(2.0)) / 2.0


def _per_crop_count(labels: np.ndarray, n: int) -> np.ndarray:
    """Number of distinct non-zero labels in each crop of an (n, H, W) label stack.

    The stack is labelled with a structure that never connects two crops, and
    `ndimage.label` numbers objects 1, 2, ... in raster order of their first pixel,
    so crop k holds exactly the labels above the largest label of crops 0..k-1 up
    to its own largest: the count is a difference of running maxima (no sort).
    """
    top = labels.reshape(n, -1).max(axis=1) if labels.size else np.zeros(n, labels.dtype)
    running = np.maximum.accumulate(top)
    return np.diff(running, prepend=0).astype(np.int64)


def euler_number(mask: np.ndarray) -> np.ndarray:
    """Objects (8-connected) minus holes (4-connected background not reaching the border), per crop.

    Counted from 2×2 windows instead of two labellings (Gray's bit quads, the rule behind
    scikit-image's ``euler_number``): for 8-connected objects, E = (Q1 − Q3 − 2·QD) / 4
    over the windows of the zero-framed crop, with Q1 / Q3 the windows holding one /
    three object pixels and QD the two diagonal ones. Integer counts, so exact (tested
    against the labelling).
    """
    n = mask.shape[0]
    p = np.pad(mask, ((0, 0), (1, 1), (1, 1))).astype(np.uint8)
    code = p[:, :-1, :-1] + 2 * p[:, :-1, 1:] + 4 * p[:, 1:, :-1] + 8 * p[:, 1:, 1:]
    counts = np.bincount((np.arange(n)[:, None] * 16 + code.reshape(n, -1)).ravel(), minlength=16 * n).reshape(n, 16)
    q1 = counts[:, [1, 2, 4, 8]].sum(1)
    q3 = counts[:, [7, 11, 13, 14]].sum(1)
    qd = counts[:, [6, 9]].sum(1)
    return (q1 - q3 - 2 * qd) // 4


def euler_by_labelling(mask: np.ndarray) -> np.ndarray:
    """The Euler number by its definition (two labellings); the reference `euler_number` is tested against."""
    n = mask.shape[0]
    objects, _ = ndi.label(mask, structure=_STACK_8)
    padded = np.pad(~mask, ((0, 0), (1, 1), (1, 1)), constant_values=True)
    background, _ = ndi.label(padded, structure=_STACK_4)
    return _per_crop_count(objects, n) - (_per_crop_count(background, n) - 1)


def stack_geometry(mask: np.ndarray, dist: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Perimeter, Euler number and radii of one object per crop, vectorised over the stack.

    Same definitions as scikit-image's regionprops / CellProfiler: perimeter with
    4-neighbourhood weights; Euler number = 8-connected components − 4-connected
    holes; radii = distances to the nearest pixel outside the object (``dist``,
    `edge_distance(mask)` when not given). The median comes from a per-object
    histogram of the squared distances (integers), so no sort is needed.
    """
    n, h, w = mask.shape
    border = np.pad((mask & ~erode_cross(mask)).astype(np.uint8), ((0, 0), (1, 1), (1, 1)))
    # the 3×3 code of every pixel (= ndi.convolve with the symmetric _PERIM_KERNEL; ≤ 49, fits uint8)
    mid = border[:, 1:-1, 1:-1]
    code = (mid + 2 * (border[:, :-2, 1:-1] + border[:, 2:, 1:-1] + border[:, 1:-1, :-2] + border[:, 1:-1, 2:])
            + 10 * (border[:, :-2, :-2] + border[:, :-2, 2:] + border[:, 2:, :-2] + border[:, 2:, 2:]))
    crop_index = np.arange(n)[:, None, None]
    perim = np.bincount((crop_index * 50 + code).ravel(), minlength=n * 50).reshape(n, 50) @ _PERIM_WEIGHTS
    euler = euler_number(mask)
    # radii: distance to the nearest non-object pixel
    if dist is None:
        dist = edge_distance(mask)
    idx = np.flatnonzero(mask)
    obj = idx // (h * w)
    d = dist.ravel()[idx]
    cnt = np.bincount(obj, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_r = np.bincount(obj, weights=d, minlength=n) / cnt
    max_r = np.zeros(n)
    med_r = np.zeros(n)
    if idx.size:
        # a Euclidean distance transform gives sqrt(k) for integer k; k = rint(d²) recovers it exactly,
        # and sqrt(k) is again the very value d, so order statistics can be read off a histogram of k
        k = np.rint(d * d).astype(np.int64)
        width = int(k.max()) + 1
        hist = np.bincount(obj * width + k, minlength=n * width).reshape(n, width)
        below = np.cumsum(hist, axis=1)  # objects with pixels ≤ each k
        has = cnt > 0
        lo = (cnt - 1) // 2  # 0-based ranks of the two middle values
        hi = cnt // 2
        k_lo = (below <= lo[:, None]).sum(axis=1)  # smallest k whose cumulative count exceeds the rank
        k_hi = (below <= hi[:, None]).sum(axis=1)
        k_max = width - 1 - np.argmax(hist[:, ::-1] > 0, axis=1)
        root = np.sqrt(np.arange(width, dtype=np.float64))
        max_r[has] = root[k_max[has]]
        med_r[has] = (root[k_lo[has]] + root[k_hi[has]]) / 2.0
    return {"Perimeter": perim, "EulerNumber": euler.astype(np.float64), "MaximumRadius": max_r,
            "MeanRadius": mean_r, "MedianRadius": med_r}


def _powers(x: np.ndarray) -> np.ndarray:
    """x⁰…x³ on a new last axis, multiplied out as cp_measure does (so sums match bit for bit)."""
    x2 = x * x
    return np.stack([np.ones_like(x), x, x2, x2 * x], axis=-1)


def central_moments(stack: np.ndarray, top: np.ndarray, left: np.ndarray, height: np.ndarray,
                    width: np.ndarray) -> np.ndarray:
    """(N, 4, 4) central moments of one object per crop: cp_measure's ``spatial_moments_2d``, from the stack.

    cp_measure finds every object's bounding box on the mosaic label image (``find_objects``,
    a scan of the whole mosaic) and copies the boxes one by one in Python into (N, maxH, maxW)
    float masks, then takes separable moments as batched matrix products. The boxes are
    already known here (``top``, ``left``, ``height``, ``width`` per object), so the same
    masks come from one gather of the stack; the products below are cp_measure's own, on the
    same arrays, so the moments are identical (tested).
    """
    n, h, w = stack.shape
    bh, bw = int(height.max()), int(width.max())
    r = top[:, None] + np.arange(bh)[None, :]  # (N, bh) rows of each box, padded past its end
    c = left[:, None] + np.arange(bw)[None, :]
    inside = (r < (top + height)[:, None])[:, :, None] & (c < (left + width)[:, None])[:, None, :]
    boxes = stack[np.arange(n)[:, None, None], np.minimum(r, h - 1)[:, :, None], np.minimum(c, w - 1)[:, None, :]]
    masks = (boxes & inside).astype(np.float64)
    rows = np.arange(bh, dtype=float)
    cols = np.arange(bw, dtype=float)
    raw = _powers(rows).T @ (masks @ _powers(cols))
    centre_r = raw[:, 1, 0] / raw[:, 0, 0]
    centre_c = raw[:, 0, 1] / raw[:, 0, 0]
    col_moments = masks @ _powers(cols[None, :] - centre_c[:, None])
    return _powers(rows[None, :] - centre_r[:, None]).transpose(0, 2, 1) @ col_moments


def measure_shape(mosaic: Mosaic, compartment: str, *, stack: np.ndarray, zernike: bool = True,
                  dist: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """AreaShape columns for one compartment, one value per object.

    ``stack`` is the compartment's (N, H, W) masks (object k = mosaic label k + 1).
    Moments are cp_measure's (`central_moments`); convex area and
    Feret diameters from one centrosome hull per object (`hull.py`), Zernike moments
    from the objects' pixels (`zernike.py`, cp_measure's definition); perimeter, Euler
    number and radii are computed on the stack (`stack_geometry`; ``dist`` = its
    `edge_distance`, when the caller already has it). Agreement with
    cp_measure's ``get_sizeshape`` / scikit-image's ``area_convex`` is tested.
    """
    n = stack.shape[0]
    area = stack.reshape(n, -1).sum(1).astype(np.float64)
    if (area == 0).any():  # regionprops / cp_measure skip absent labels: rows would misalign
        raise ValueError(
            f"{compartment}: objects {np.flatnonzero(area == 0).tolist()[:10]} are empty; measure only "
            "non-empty objects (measure() substitutes and NaNs empty compartments)"
        )
    rows = stack.any(axis=2)
    cols = stack.any(axis=1)
    top, left = h_first(rows), h_first(cols)
    height = h_last(rows) - top + 1
    width = h_last(cols) - left + 1
    bbox_area = (height * width).astype(np.float64)
    hulls = object_hulls(mosaic, stack)
    hull = hull_measures(hulls)
    convex = hull["ConvexArea"]
    geo = stack_geometry(stack, dist)
    central = central_moments(stack, top, left, height, width)
    major, minor, ecc, orient = axes_eccentricity_orientation(inertia_2d(central))
    perim = geo["Perimeter"]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {
            "Area": area,
            "Perimeter": perim,
            "ConvexArea": convex,
            "EquivalentDiameter": np.sqrt(4.0 * area / np.pi),
            "MajorAxisLength": major,
            "MinorAxisLength": minor,
            "Eccentricity": ecc,
            "Orientation": orient * (180.0 / np.pi),
            "FormFactor": 4.0 * np.pi * area / perim**2,
            "Extent": area / bbox_area,
            "Solidity": area / convex,
            "Compactness": perim**2 / np.maximum(4.0 * np.pi * area, 1.0),
            "EulerNumber": geo["EulerNumber"],
            "MaximumRadius": geo["MaximumRadius"],
            "MeanRadius": geo["MeanRadius"],
            "MedianRadius": geo["MedianRadius"],
            "BoundingBoxArea": bbox_area,
        }
    values["MinFeretDiameter"] = hull["MinFeretDiameter"]
    values["MaxFeretDiameter"] = hull["MaxFeretDiameter"]
    out = {f"{compartment}_AreaShape_{m}": np.asarray(values[m], dtype=np.float64) for m in SIZESHAPE}
    if zernike:
        z = zernike_moments(mosaic, compartment, stack, ZERNIKE_DEGREE, hulls)
        for nn, m in zernike_indexes():
            out[f"{compartment}_AreaShape_Zernike_{nn}_{m}"] = np.asarray(z[f"Zernike_{nn}_{m}"], dtype=np.float64)
    return out


def h_first(any_along: np.ndarray) -> np.ndarray:
    """Index of the first True per row (0 when none)."""
    return np.argmax(any_along, axis=1)


def h_last(any_along: np.ndarray) -> np.ndarray:
    """Index of the last True per row."""
    return any_along.shape[1] - 1 - np.argmax(any_along[:, ::-1], axis=1)

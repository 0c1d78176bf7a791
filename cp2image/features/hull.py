"""Convex area and Feret diameters of one object per crop, from one convex hull per object.

cp_measure computes the Feret diameters from centrosome's convex hull of each object's
pixels, and scikit-image's ``area_convex`` builds a second hull per object (a Python
call, a qhull run and a point-in-polygon scan each). Here both come from centrosome's
hull, computed once for all objects:

- The hull is built from each object's outline pixels (an 8-neighbour outside the object),
  in mosaic coordinates, label by label: the very input centrosome's ``convex_hull``
  gives it, so the hull is identical to the one behind the minimum enclosing circle of
  the Zernike moments, which reuses it (`zernike.py`).
- Feret diameters: centrosome's ``feret_diameter`` on that hull; identical to cp_measure,
  which passes every pixel (interior pixels are never hull vertices).
- Convex area: scikit-image counts the pixels whose centres lie in or on the hull of
  the pixels' edge midpoints (each pixel widened to a diamond of radius ½). That set is
  hull(centres) ⊕ diamond, a convex polygon whose edge normals are those of the
  centres' hull plus the diamond's four diagonals, so a pixel belongs to it exactly
  when n·p ≤ h_hull(n) + h_diamond(n) for each of those normals n (h = support
  function). In doubled coordinates every quantity is an integer, so each row's
  first and last pixel follow from integer floor divisions: exact, and vectorised
  over objects, rows and normals.
"""
from __future__ import annotations

import numpy as np
from dataclasses import dataclass

from centrosome.cpmorphology import convex_hull_ijv, feret_diameter
from .morphology import erode_square
from .mosaic import Mosaic, object_pixels

_DIAMOND_NORMALS = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.int64)



@dataclass
class ObjectHulls:
    """centrosome's hull of each object: (label, i, j) vertex rows, counter-clockwise, and counts."""

    points: np.ndarray
    counts: np.ndarray
    n_objects: int


def object_hulls(mosaic: Mosaic, stack: np.ndarray) -> ObjectHulls:
    """Hulls of the (N, H, W) masks' objects (object k = mosaic label k + 1), in mosaic coordinates."""
    n = stack.shape[0]
    outline = stack & ~erode_square(stack)
    px = object_pixels(mosaic, outline)
    points, counts = convex_hull_ijv(np.column_stack((px.rows, px.cols, px.object + 1)), np.arange(1, n + 1))
    return ObjectHulls(points=points, counts=np.asarray(counts), n_objects=n)


def hull_measures(hulls: ObjectHulls) -> dict[str, np.ndarray]:
    """``ConvexArea``, ``MinFeretDiameter`` and ``MaxFeretDiameter`` of every object, (N,) each."""
    indexes = np.arange(1, hulls.n_objects + 1)
    min_feret, max_feret = feret_diameter(hulls.points, hulls.counts, indexes)
    return {
        "ConvexArea": convex_area(hulls),
        "MinFeretDiameter": np.asarray(min_feret, dtype=np.float64),
        "MaxFeretDiameter": np.asarray(max_feret, dtype=np.float64),
    }


def convex_area(hulls: ObjectHulls) -> np.ndarray:
    """Pixels inside or on each object's convex hull as scikit-image draws it (see module doc)."""
    n, chulls = hulls.n_objects, hulls.points
    counts = np.asarray(hulls.counts, dtype=np.int64)
    if n == 0:
        return np.zeros(0)
    # hull vertices, doubled, padded per object to a (n, V) table by repeating each object's first vertex
    v_max = max(int(counts.max()), 1)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    k = np.minimum(np.arange(v_max)[None, :], np.maximum(counts - 1, 0)[:, None])
    take = first[:, None] + k
    vi = 2 * chulls[take, 1].astype(np.int64)
    vj = 2 * chulls[take, 2].astype(np.int64)
    nxt = np.where(np.arange(v_max)[None, :] + 1 < counts[:, None], np.arange(v_max)[None, :] + 1, 0)
    nxt = np.minimum(nxt, v_max - 1)
    di = np.take_along_axis(vi, nxt, axis=1) - vi
    dj = np.take_along_axis(vj, nxt, axis=1) - vj
    # normals of the hull's edges (both orientations: each is a valid supporting direction)
    # and of the diamond; a padded (repeated) vertex gives a zero edge, whose test always holds
    a = np.concatenate([dj, -dj, np.broadcast_to(_DIAMOND_NORMALS[:, 0], (n, 4))], axis=1)
    b = np.concatenate([-di, di, np.broadcast_to(_DIAMOND_NORMALS[:, 1], (n, 4))], axis=1)
    support = (a[:, :, None] * vi[:, None, :] + b[:, :, None] * vj[:, None, :]).max(axis=2)
    bound = support + np.maximum(np.abs(a), np.abs(b))  # h_hull(n) + h_diamond(n)
    # rows of each object's bounding box (its top and bottom pixels are hull vertices)
    y0 = np.minimum.reduceat(chulls[:, 1].astype(np.int64), first)
    y1 = np.maximum.reduceat(chulls[:, 1].astype(np.int64), first)
    rows = y0[:, None] + np.arange(int((y1 - y0).max()) + 1)[None, :]  # (n, R)
    valid = rows <= y1[:, None]
    rest = bound[:, None, :] - a[:, None, :] * (2 * rows[:, :, None])  # b·2x ≤ rest, (n, R, K)
    big = np.int64(1) << 40
    bb = b[:, None, :]
    with np.errstate(divide="ignore"):
        upper = np.where(bb > 0, np.floor_divide(rest, np.where(bb > 0, 2 * bb, 1)), big).min(axis=2)
        lower = np.where(bb < 0, -np.floor_divide(rest, np.where(bb < 0, -2 * bb, 1)), -big).max(axis=2)
    row_ok = np.where(bb == 0, rest >= 0, True).all(axis=2) & valid
    width = np.where(row_ok, np.maximum(upper - lower + 1, 0), 0)
    return width.sum(axis=1).astype(np.float64)

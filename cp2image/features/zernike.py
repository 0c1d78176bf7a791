"""Zernike shape moments of one object per crop, from 55 separable coordinate moments.

CellProfiler's definition (cp_measure's ``get_zernike``): on each object's minimum
enclosing circle (centre c, radius R), with y = (row − c_y)/R, x = (col − c_x)/R,
r² = x² + y², z = y + i·x, the (n, m) moment is |Σ_pixels V_nm| / (πR²), where
V_nm = Σ_k lut[k]·(r²)^((n−m)/2−k)·z^m and pixels with r² > 1 are left out.
cp_measure evaluates V_nm pixel by pixel for all 30 orders (~300 array passes over
every object pixel). Every V_nm is a polynomial of degree ≤ 9 in y and x, so its sum
over an object is a fixed linear combination of the object's moments
M_ab = Σ y^a x^b (a + b ≤ 9), and those separate over rows and columns:
M = Y · mask · Xᵀ with Y[a, i] = y(i)^a, X[b, j] = x(j)^b — two small matrix products
per crop. y(i), x(j) and the r² > 1 exclusion are computed with cp_measure's formulas,
so the same pixels count; only the order of additions differs (agreement with
``get_zernike`` to ~1e-12 is tested).

The minimum enclosing circle is cp_measure's (centrosome's) on the mosaic labels, so a
crop's values stay what they were at the same mosaic position.
"""
from __future__ import annotations

from functools import lru_cache
from math import comb

import numpy as np
from centrosome import zernike as cz

from .hull import ObjectHulls
from .mosaic import Mosaic


@lru_cache(maxsize=4)
def _coefficients(degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(orders (K, 2), real (K, D, D), imaginary (K, D, D)): V_nm = Σ_ab C[k, a, b] y^a x^b, D = degree + 1."""
    indexes = cz.get_zernike_indexes(degree + 1)
    lut = cz.construct_zernike_lookuptable(indexes)
    d = degree + 1
    coef = np.zeros((len(indexes), d, d), dtype=complex)
    for k, (n, m) in enumerate(indexes):
        for step in range((n - m) // 2 + 1):
            j = (n - m) // 2 - step  # lut[step] multiplies (r²)^j
            for t in range(j + 1):  # (y² + x²)^j
                for s in range(m + 1):  # (y + i·x)^m
                    a, b = 2 * t + m - s, 2 * (j - t) + s
                    coef[k, a, b] += lut[k, step] * comb(j, t) * comb(m, s) * (1j**s)
    return indexes, coef.real.copy(), coef.imag.copy()


def zernike_moments(mosaic: Mosaic, compartment: str, stack: np.ndarray, degree: int,
                    hulls: ObjectHulls | None = None) -> dict[str, np.ndarray]:
    """``{"Zernike_n_m": (N,)}`` for the N objects of ``stack`` (N, H, W), object k = mosaic label k + 1.

    ``hulls``: the objects' `hull.object_hulls`, the hull centrosome would compute for the
    enclosing circle (passed on, not recomputed).
    """
    indexes, c_re, c_im = _coefficients(degree)
    n, h, w = stack.shape
    d = degree + 1
    hull = None if hulls is None else (hulls.points, hulls.counts)
    # with the hull given, centrosome reads nothing from the label image (a layout-only mosaic has none)
    labels = mosaic.labels[compartment] if hull is None else None
    centers, radii = cz.minimum_enclosing_circle(labels, np.arange(1, n + 1), hull)
    centers = np.asarray(centers, dtype=float).reshape(n, 2)
    radii = np.asarray(radii, dtype=float).reshape(n)
    # the coordinates cp_measure gives each pixel: (mosaic row − centre) / radius
    rows = mosaic.origins[:, :1] + np.arange(h)[None, :]
    cols = mosaic.origins[:, 1:] + np.arange(w)[None, :]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        y = (rows - centers[:, :1]) / radii[:, None]  # (n, H)
        x = (cols - centers[:, 1:]) / radii[:, None]  # (n, W)
        r2 = x[:, None, :] * x[:, None, :] + y[:, :, None] * y[:, :, None]
    weight = (stack & ~(r2 > 1)).astype(np.float64)  # cp_measure zeroes pixels outside the unit disc
    ok = radii > 0  # a one-pixel object has radius 0: NaN, as in cp_measure
    y = np.where(ok[:, None], y, 0.0)
    x = np.where(ok[:, None], x, 0.0)
    y_pow = np.ones((n, d, h))
    x_pow = np.ones((n, d, w))
    for p in range(1, d):
        y_pow[:, p] = y_pow[:, p - 1] * y
        x_pow[:, p] = x_pow[:, p - 1] * x
    moments = (y_pow @ weight @ x_pow.transpose(0, 2, 1)).reshape(n, d * d)  # M[k, a, b]
    real = moments @ c_re.reshape(len(indexes), d * d).T
    imag = moments @ c_im.reshape(len(indexes), d * d).T
    areas = np.pi * radii * radii
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.sqrt(real**2 + imag**2) / areas[:, None]
    score[~ok] = np.nan
    return {f"Zernike_{nn}_{m}": score[:, i] for i, (nn, m) in enumerate(indexes)}

"""Compiled inner loops of `render.py`, bit for bit the same as its numpy code.

Why: a field's cell territories were ~60 small numpy operations per cell (bounding box,
ellipse, five-harmonic ruffle, best/runner-up update) for ~90 cells, a quarter of the
rendering time, mostly per-call overhead on ~3,600-pixel boxes. Here each pixel is one
pass of the same arithmetic.

Why it is exact: only +, −, ×, ÷ and √ run here, in the same order, on the same
dtypes as the numpy expressions (IEEE-754 rounds each of them the same way in both,
and numba does not fuse or reorder them without `fastmath`). Every transcendental
(cos, sin, exp) is computed by numpy outside and passed in, because numba's libm `exp`
differs from numpy's in the last bit. `tests/simulate/test_render_kernels.py` checks
fields against the numpy path, which is what runs without numba.
"""
from __future__ import annotations

import importlib.util
from functools import cache
from typing import Callable

import numpy as np

# numba is imported on the first compiled call, not here: the process that only writes the
# dataset (the command's main process) imports this module too, and numba would add ~50 MB
# to its memory for nothing. Without numba the numpy path runs.
HAS_NUMBA = importlib.util.find_spec("numba") is not None


def _territories_loop(best: np.ndarray, second: np.ndarray, label: np.ndarray, x0s: np.ndarray, y0s: np.ndarray,
                      reach: np.ndarray, cos_a: np.ndarray, sin_a: np.ndarray, semi_a: np.ndarray, semi_b: np.ndarray,
                      irregular: np.ndarray, harm_w: np.ndarray, cos_phase: np.ndarray, sin_phase: np.ndarray) -> None:
    """`render._territories`' per-cell loop (with `render._ruffle` for HARMONICS = (2, 3, 4, 5, 7)), in place.

    Cells in order; per box row, first the normalised radius of every pixel (a branch-free
    loop the compiler vectorises), then the best / runner-up / label update.
    """
    size = best.shape[0]
    rho = np.empty(size, np.float64)
    for i in range(x0s.shape[0]):
        x0 = x0s[i]
        y0 = y0s[i]
        xa = max(int(x0) - reach[i], 0)
        xb = min(int(x0) + reach[i] + 1, size)
        ya = max(int(y0) - reach[i], 0)
        yb = min(int(y0) + reach[i] + 1, size)
        if xa >= xb or ya >= yb:
            continue
        c = cos_a[i]
        s = sin_a[i]
        sa = np.float64(semi_a[i])
        sb = np.float64(semi_b[i])
        irr = np.float64(irregular[i])
        w2, w3, w4, w5, w7 = harm_w[i, 0], harm_w[i, 1], harm_w[i, 2], harm_w[i, 3], harm_w[i, 4]
        c2, c3, c4, c5, c7 = cos_phase[i, 0], cos_phase[i, 1], cos_phase[i, 2], cos_phase[i, 3], cos_phase[i, 4]
        s2, s3, s4, s5, s7 = sin_phase[i, 0], sin_phase[i, 1], sin_phase[i, 2], sin_phase[i, 3], sin_phase[i, 4]
        for yy in range(ya, yb):
            dy = np.float64(yy) - y0
            for j in range(xb - xa):  # from 0: no negative-index check, so the loop vectorises
                dx = np.float64(xa + j) - x0
                u = (dx * c + dy * s) / sa
                v = (-dx * s + dy * c) / sb
                radius = np.sqrt(u * u + v * v)
                cc = u / (radius + 1e-6)
                ss = v / (radius + 1e-6)
                # (cos θ + i sin θ)^k by repeated multiplication, as _ruffle does
                p2r, p2i = cc * cc - ss * ss, cc * ss + ss * cc
                p3r, p3i = p2r * cc - p2i * ss, p2r * ss + p2i * cc
                p4r, p4i = p3r * cc - p3i * ss, p3r * ss + p3i * cc
                p5r, p5i = p4r * cc - p4i * ss, p4r * ss + p4i * cc
                p6r, p6i = p5r * cc - p5i * ss, p5r * ss + p5i * cc
                p7r, p7i = p6r * cc - p6i * ss, p6r * ss + p6i * cc
                out = 0.0
                out += w2 * (p2r * c2 - p2i * s2)
                out += w3 * (p3r * c3 - p3i * s3)
                out += w4 * (p4r * c4 - p4i * s4)
                out += w5 * (p5r * c5 - p5i * s5)
                out += w7 * (p7r * c7 - p7i * s7)
                rho[j] = radius / (1 + irr * out)
            for j in range(xb - xa):
                xx = xa + j
                r = rho[j]
                b = np.float64(best[yy, xx])
                if r < b:  # np.where(closer, b, ...) / np.where(closer, rho, b)
                    second[yy, xx] = best[yy, xx]
                    best[yy, xx] = np.float32(r)
                    if r < 1:
                        label[yy, xx] = i
                else:
                    sec = np.float64(second[yy, xx])
                    second[yy, xx] = np.float32(r if r < sec else sec)


def _nucleus_boxes(rho: np.ndarray, arg: np.ndarray, offset: np.ndarray, xa: np.ndarray, xb: np.ndarray,
                   ya: np.ndarray, yb: np.ndarray, nx: np.ndarray, ny: np.ndarray, coords32: np.ndarray,
                   cos_n: np.ndarray, sin_n: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> None:
    """Per nucleus box pixel: normalised radius `rho` and the clipped logistic argument of
    `render._paint_nuclei`, into flat buffers at `offset[n]` (numpy then takes the `exp`).

    `coords32[n]`: the nucleus centre was a Python float, so numpy computed `x - centre` in
    float32 (the primary nucleus); otherwise in float64.
    """
    for n in range(xa.shape[0]):
        w = xb[n] - xa[n]
        c = cos_n[n]
        s = sin_n[n]
        a = ra[n]
        b = rb[n]
        x32 = np.float32(nx[n])
        y32 = np.float32(ny[n])
        for r in range(yb[n] - ya[n]):
            yy = ya[n] + r
            if coords32[n]:
                dy = np.float64(np.float32(np.float32(yy) - y32))
            else:
                dy = np.float64(yy) - ny[n]
            base = offset[n] + r * w
            for j in range(w):
                xx = xa[n] + j
                if coords32[n]:
                    dx = np.float64(np.float32(np.float32(xx) - x32))
                else:
                    dx = np.float64(xx) - nx[n]
                u = (dx * c + dy * s) / a
                v = (-dx * s + dy * c) / b
                rr = np.sqrt(u * u + v * v)
                rho[base + j] = rr
                t = (rr - 1.0) * b / 0.7
                arg[base + j] = min(max(t, -30.0), 30.0)


def _paint_nucleus_boxes(dna: np.ndarray, occupancy: np.ndarray, rho: np.ndarray, e: np.ndarray, offset: np.ndarray,
                         xa: np.ndarray, xb: np.ndarray, ya: np.ndarray, yb: np.ndarray, cell: np.ndarray,
                         bright: np.ndarray, chrom: np.ndarray, tile: np.ndarray, off_a: np.ndarray, off_b: np.ndarray,
                         texture: np.ndarray) -> None:
    """Add each nucleus (in order) to `dna` and raise `occupancy`, as `render._paint_nuclei` does, from
    `rho` and `e` = exp(arg) of `_nucleus_boxes`."""
    n_theta = chrom.shape[1]
    n_r = chrom.shape[2]
    for n in range(xa.shape[0]):
        i = cell[n]
        w = xb[n] - xa[n]
        tex_gain = texture[i]
        for r in range(yb[n] - ya[n]):
            yy = ya[n] + r
            ty = (yy + off_a[i]) % n_theta
            base = offset[n] + r * w
            for j in range(w):
                xx = xa[n] + j
                soft = 1.0 / (1.0 + e[base + j])
                rr = rho[base + j]
                cl = min(max(rr, 0.0), 1.0)
                dome = 1.0 - 0.25 * (cl * cl)
                tex = chrom[tile[i], ty, (xx + off_b[i]) % n_r]
                g = np.float32(np.float32(1.0) + tex_gain * tex)
                g = max(g, np.float32(0.2))
                dna[yy, xx] = np.float32(np.float64(dna[yy, xx]) + bright[n] * soft * dome * np.float64(g))
                occupancy[yy, xx] = np.float32(max(np.float64(occupancy[yy, xx]), soft))


KERNEL_HARMONICS = (2, 3, 4, 5, 7)  # the ruffle harmonics the territory kernel is written for


@cache
def compiled(name: str) -> Callable:
    """The numba-compiled kernel `name` (e.g. "territories_loop"), with an on-disk cache when the
    package folder is writable, else without."""
    import numba

    fn = globals()["_" + name]
    try:
        return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:  # no writable cache location (read-only install)
        return numba.njit(nogil=True, error_model="numpy")(fn)

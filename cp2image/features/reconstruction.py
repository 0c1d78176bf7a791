"""Grey-scale morphological reconstruction by dilation, for a stack of small images.

Granularity needs one reconstruction per spectrum step, channel and crop.
scikit-image's `reconstruction` sorts every pixel on each call (~2.6 ms per
68×68 crop), which alone would cap measurement far below 200 crops/s. This
module runs Vincent's (1993) hybrid algorithm — a forward and a backward raster
scan, then a FIFO for the pixels still able to grow — compiled with numba when
numba is installed (tens of µs per crop), and falls back to scikit-image per
crop otherwise. Both give identical results (tested). 4-connectivity, as
scikit-image's default footprint (``disk(1)``).
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

try:  # optional accelerator
    import numba

    HAS_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAS_NUMBA = False


def _forward(J: np.ndarray, mask: np.ndarray) -> None:
    H, W = J.shape
    for y in range(H):
        for x in range(W):
            v = J[y, x]
            if y > 0 and J[y - 1, x] > v:
                v = J[y - 1, x]
            if x > 0 and J[y, x - 1] > v:
                v = J[y, x - 1]
            m = mask[y, x]
            J[y, x] = v if v < m else m


def _backward(J: np.ndarray, mask: np.ndarray) -> None:
    H, W = J.shape
    for y in range(H - 1, -1, -1):
        for x in range(W - 1, -1, -1):
            v = J[y, x]
            if y < H - 1 and J[y + 1, x] > v:
                v = J[y + 1, x]
            if x < W - 1 and J[y, x + 1] > v:
                v = J[y, x + 1]
            m = mask[y, x]
            J[y, x] = v if v < m else m


def _reconstruct_one(J: np.ndarray, mask: np.ndarray, queue: np.ndarray, n_scans: int) -> np.ndarray:
    """In-place reconstruction of marker J under mask (both (H, W) float64)."""
    H, W = J.shape
    # raster scans: forward (neighbours above/left) then backward (below/right);
    # extra scan pairs are cheap and leave far fewer pixels for the FIFO phase
    for _ in range(n_scans - 1):
        _forward(J, mask)
        _backward(J, mask)
    _forward(J, mask)
    # backward scan: neighbours below and to the right; seed the FIFO
    head = 0
    tail = 0
    cap = queue.shape[0]
    for y in range(H - 1, -1, -1):
        for x in range(W - 1, -1, -1):
            v = J[y, x]
            if y < H - 1 and J[y + 1, x] > v:
                v = J[y + 1, x]
            if x < W - 1 and J[y, x + 1] > v:
                v = J[y, x + 1]
            m = mask[y, x]
            v = v if v < m else m
            J[y, x] = v
            push = False
            if y < H - 1 and J[y + 1, x] < v and J[y + 1, x] < mask[y + 1, x]:
                push = True
            if x < W - 1 and J[y, x + 1] < v and J[y, x + 1] < mask[y, x + 1]:
                push = True
            if push:
                queue[tail % cap] = y * W + x
                tail += 1
    # propagation
    while head < tail:
        p = queue[head % cap]
        head += 1
        py = p // W
        px = p - py * W
        vp = J[py, px]
        for k in range(4):
            qy = py + (1 if k == 0 else (-1 if k == 1 else 0))
            qx = px + (1 if k == 2 else (-1 if k == 3 else 0))
            if qy < 0 or qy >= H or qx < 0 or qx >= W:
                continue
            jq = J[qy, qx]
            mq = mask[qy, qx]
            if jq < vp and jq != mq:
                J[qy, qx] = vp if vp < mq else mq
                if tail - head >= cap:  # grow the ring buffer (rare)
                    bigger = np.empty(cap * 2, dtype=queue.dtype)
                    for t in range(head, tail):
                        bigger[t - head] = queue[t % cap]
                    tail -= head
                    head = 0
                    queue = bigger
                    cap = cap * 2
                queue[tail % cap] = qy * W + qx
                tail += 1
    return J


def _reconstruct_stack(seed: np.ndarray, mask: np.ndarray, n_scans: int) -> np.ndarray:
    n, h, w = seed.shape
    out = np.minimum(seed, mask)
    queue = np.empty(4 * h * w, dtype=np.int64)
    for i in range(n):
        _reconstruct_one(out[i], mask[i], queue, n_scans)
    return out


def _jit(fn):
    """numba.njit with an on-disk cache when the package folder is writable, else without."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no writable cache location (read-only install)
        return numba.njit(nogil=True)(fn)


if HAS_NUMBA:
    _forward = _jit(_forward)
    _backward = _jit(_backward)
    _reconstruct_one = _jit(_reconstruct_one)
    _reconstruct_stack = _jit(_reconstruct_stack)


N_SCANS = 3  # raster-scan pairs before the FIFO phase (tuned on 34×34 crops)


def reconstruct_by_dilation(seed: np.ndarray, mask: np.ndarray, *, use_numba: bool | None = None) -> np.ndarray:
    """Reconstruction by dilation of each (H, W) image of an (N, H, W) stack; seed ≤ mask.

    Same result as ``skimage.morphology.reconstruction(seed[i], mask[i])`` for each i.
    """
    seed = np.ascontiguousarray(seed, dtype=np.float64)
    mask = np.ascontiguousarray(mask, dtype=np.float64)
    if seed.shape != mask.shape or seed.ndim != 3:
        raise ValueError(f"seed and mask must be (N, H, W) stacks of one shape; got {seed.shape} and {mask.shape}")
    if use_numba is None:
        use_numba = HAS_NUMBA
    if use_numba:
        if not HAS_NUMBA:
            raise RuntimeError("numba is not installed; pip install numba or pass use_numba=False")
        return _reconstruct_stack(seed, mask, N_SCANS)
    from skimage.morphology import reconstruction

    _CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    return np.stack([reconstruction(np.minimum(s, m), m, footprint=_CROSS) for s, m in zip(seed, mask)]) if len(seed) else seed.copy()

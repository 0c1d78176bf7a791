"""Segment the central cell of single-cell crops: nucleus, cell and cytoplasm.

Mirrors a classic CellProfiler pipeline on crops, vectorised over a batch so
that thousands of 68×68 crops per second are possible:

1. **Nuclei** (IdentifyPrimaryObjects): Gaussian-smoothed DNA channel,
   per-crop Otsu threshold, holes filled, touching nuclei split by shape and
   intensity (like CellProfiler's declumping: watershed from the maxima of
   distance-to-edge plus DNA intensity; a maximum seeds its own nucleus only
   when it rises ``declump_h`` above the saddle to any higher one — the
   h-maxima transform — so an elongated nucleus is not cut along its ridge),
   objects smaller than ``min_nucleus_area`` removed. The *central* nucleus is the object that
   contains, or lies nearest to, the crop centre (crops are centred on a
   nucleus, as in BBBC021 / the paper).
2. **Cells** (IdentifySecondaryObjects, propagation-like): every nucleus in the
   crop seeds a watershed on the inverted, smoothed actin + tubulin image,
   restricted to a foreground mask (per-crop Otsu on that image, scaled by
   ``cell_threshold_factor``, union the nuclei). Seeding from all nuclei keeps a
   neighbouring cell from being swallowed by the central one.
3. **Cytoplasm** (IdentifyTertiaryObjects): cell minus nucleus.

4. **Weak cell signal** (e.g. blurry generated images): a crop whose cytoplasm
   came out smaller than ``min_cytoplasm_area`` is retried — and only such a crop,
   so crops that segment in the first pass keep their masks bit for bit — with
   propagation over distance-to-nuclei inside a tolerant foreground
   (``fallback_threshold_factor`` × Otsu). If the cytoplasm is still too small it
   is reported empty (cell = nucleus): the crop stays ``ok`` and `measure` gives
   NaN Cytoplasm features but measures nucleus and cell, as CellProfiler would.

A crop fails (``ok=False``) only when its DNA channel has no contrast or no
nucleus lies within ``max_centre_distance`` of the centre. Failing never
raises: callers get empty masks and the flag.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential, watershed

from .distance import edge_distance
from .morphology import fill_holes
from .reconstruction import reconstruct_by_dilation

# 2-D connectivity inside each crop of an (N, H, W) stack, none across crops.
_STACK_4 = np.zeros((3, 3, 3), dtype=bool)
_STACK_4[1] = ndi.generate_binary_structure(2, 1)
_STACK_8 = np.zeros((3, 3, 3), dtype=bool)
_STACK_8[1] = True


@dataclass(frozen=True)
class SegmentationConfig:
    """Parameters of the crop segmentation (pixel units, intensities in [0, 1])."""

    smoothing_sigma: float = 1.0  # Gaussian sigma before thresholding (px)
    min_nucleus_area: int = 20  # smaller DNA objects are debris (px)
    max_centre_distance: float = 12.0  # central nucleus must reach this close to the centre (px)
    min_dna_contrast: float = 0.02  # DNA max - min below this → empty crop
    declump_h: float = 0.1  # seeds must rise this much above their saddle (landscape in [0, 1+w]); 0 = off
    declump_intensity_weight: float = 1.0  # w: DNA intensity's share of the declumping landscape
    cell_threshold_factor: float = 0.8  # × Otsu on actin+tubulin; <1 keeps dim cell edges
    min_cytoplasm_area: int = 5  # smaller cytoplasm → retried tolerantly, then empty (NaN Cytoplasm_*; crop still ok)
    fallback_threshold_factor: float = 0.5  # × Otsu for the tolerant retry; 0 = no retry


@dataclass
class Segmentation:
    """Masks of one crop's central cell; all False when ``ok`` is False."""

    nucleus: np.ndarray  # bool (H, W)
    cell: np.ndarray  # bool (H, W)
    cytoplasm: np.ndarray  # bool (H, W)
    ok: bool


@dataclass
class BatchSegmentation:
    """Masks for a batch of crops, each (N, H, W) bool, and ``ok`` (N,) bool."""

    nucleus: np.ndarray
    cell: np.ndarray
    cytoplasm: np.ndarray
    ok: np.ndarray

    def __getitem__(self, i: int) -> Segmentation:
        return Segmentation(self.nucleus[i], self.cell[i], self.cytoplasm[i], bool(self.ok[i]))


def _as_float_batch(images: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) → float32 in [0, 1]; uint8 is divided by 255."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must have shape (N, 3, H, W) in channel order DNA, Tubulin, Actin; got {images.shape}"
        )
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    if np.issubdtype(images.dtype, np.floating):
        return images.astype(np.float32, copy=False)
    raise ValueError(f"images must be uint8 (0-255) or float in [0, 1]; got dtype {images.dtype}")


def otsu_thresholds(stack: np.ndarray, *, bins: int = 256) -> np.ndarray:
    """Otsu threshold of every image in an (N, H, W) stack with values in [0, 1].

    Vectorised over the batch: one histogram per image, then the threshold that
    maximises the between-class variance ω0·ω1·(μ0 − μ1)².
    """
    n = stack.shape[0]
    q = np.clip((stack.reshape(n, -1) * (bins - 1) + 0.5).astype(np.int64), 0, bins - 1)
    hist = np.bincount((q + np.arange(n)[:, None] * bins).ravel(), minlength=n * bins).reshape(n, bins)
    hist = hist.astype(np.float64)
    centres = np.arange(bins) / (bins - 1)
    w0 = np.cumsum(hist, axis=1)
    m0 = np.cumsum(hist * centres, axis=1)
    total_w = w0[:, -1:]
    total_m = m0[:, -1:]
    w1 = total_w - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0 * total_w - total_m * w0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    k = np.argmax(between, axis=1)
    # threshold halfway between bin k and k+1: pixels > t are foreground
    return (centres[k] + 0.5 / (bins - 1)).astype(np.float32)


def central_labels(labels: np.ndarray, n_labels: int, max_dist: float) -> np.ndarray:
    """For each crop, the label id of the object nearest the centre (0 = none)."""
    n, h, w = labels.shape
    out = np.zeros(n, dtype=np.int64)
    if n_labels == 0:
        return out
    yy, xx = np.mgrid[:h, :w]
    dist = np.hypot(yy - (h - 1) / 2.0, xx - (w - 1) / 2.0)
    ids = np.arange(1, n_labels + 1)
    flat = labels.ravel()
    nz = np.flatnonzero(flat)
    # each label's smallest distance to the centre (ndimage.minimum sorts every pixel; this does not)
    mind = np.full(n_labels + 1, np.inf)
    np.minimum.at(mind, flat[nz], dist.ravel()[nz % (h * w)])
    mind = mind[1:]
    # which crop each label lives in: first pixel of the label
    first = np.full(n_labels + 1, -1, dtype=np.int64)
    first[flat[nz][::-1]] = nz[::-1]
    crop_of = first[1:] // (h * w)
    order = np.lexsort((mind, crop_of))  # by crop, then distance
    crop_sorted = crop_of[order]
    is_first = np.r_[True, crop_sorted[1:] != crop_sorted[:-1]]
    best = order[is_first]
    keep = mind[best] <= max_dist
    out[crop_of[best][keep]] = ids[best][keep]
    return out


def _stack_watershed(image: np.ndarray, markers: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-crop watershed of an (N, H, W) stack, run only where it can change anything.

    A watershed floods each 8-connected mask component from its markers; a component
    holding one marker simply takes that marker's label (none: stays 0). So only
    crops with a component holding two or more markers go through scikit-image's
    watershed; the result is identical and most crops skip the priority queue.
    """
    comp, n_comp = ndi.label(mask, structure=_STACK_8)
    out = np.zeros_like(markers)
    if n_comp == 0:
        return out
    has = (markers > 0) & (comp > 0)
    codes = comp[has].astype(np.int64) * (int(markers.max()) + 1) + markers[has]
    span = (n_comp + 1) * (int(markers.max()) + 1)
    if span <= 1 << 22:  # distinct codes from a presence table: np.unique's sort costs more on crop stacks
        seen = np.zeros(span, dtype=bool)
        seen[codes] = True
        pairs = np.flatnonzero(seen)
    else:
        pairs = np.unique(codes)
    comp_of = pairs // (int(markers.max()) + 1)
    marker_of = pairs % (int(markers.max()) + 1)
    n_markers = np.bincount(comp_of, minlength=n_comp + 1)
    single = np.zeros(n_comp + 1, dtype=markers.dtype)
    one = n_markers[comp_of] == 1
    single[comp_of[one]] = marker_of[one]
    out = single[comp]
    multi = np.flatnonzero(n_markers >= 2)
    if multi.size:
        is_multi = np.zeros(n_comp + 1, dtype=bool)
        is_multi[multi] = True
        crops = np.flatnonzero(is_multi[comp].reshape(comp.shape[0], -1).any(axis=1))
        out[crops] = watershed(image[crops], markers=markers[crops], connectivity=_STACK_8, mask=mask[crops])
    return out


def _declump(fg: np.ndarray, dna: np.ndarray, h: float, intensity_weight: float) -> tuple[np.ndarray, int]:
    """Split touching nuclei by shape and intensity.

    Landscape f = distance-to-edge / its crop max + w · smoothed DNA / its crop max;
    seeds are f's h-maxima (regional maxima of the reconstruction of f − h under f),
    so two bumps merge unless the dip between them is at least h; then watershed on −f.
    """
    n = fg.shape[0]
    dist = edge_distance(fg)
    dist = ndi.gaussian_filter(dist, (0.0, 1.0, 1.0))

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.maximum(a.reshape(n, -1).max(1), 1e-6)[:, None, None]

    f = unit(dist)
    if intensity_weight:
        f = f + intensity_weight * unit(ndi.gaussian_filter(dna, (0.0, 2.0, 2.0)))
    r = reconstruct_by_dilation(f - h, f)
    eps = 1e-4
    peaks = ((r - reconstruct_by_dilation(r - eps, r)) >= eps / 2) & fg
    markers, _ = ndi.label(peaks, structure=_STACK_8)
    labels = _stack_watershed(-f, markers, fg)
    # foreground specks that got no seed keep a label of their own
    rest, n_rest = ndi.label(fg & (labels == 0), structure=_STACK_4)
    if n_rest:
        labels = np.where(rest > 0, rest + labels.max(), labels)
    labels, _, _ = relabel_sequential(labels)
    return labels, int(labels.max())


def label_nuclei(dna: np.ndarray, *, config: SegmentationConfig | None = None) -> tuple[np.ndarray, int]:
    """Step 1 alone: every nucleus of each DNA image in an (N, H, W) float stack in [0, 1].

    Returns int labels (N, H, W), 0 = background, numbered 1..n over the whole
    stack, and n. Used by `segment_batch` on crops and by field ingestion
    (`cp2image.data.ingest.nuclei_fields`) on whole fields of view, so both find nuclei
    the same way.
    """
    cfg = config or SegmentationConfig()
    n = dna.shape[0]
    sigma = (0.0, cfg.smoothing_sigma, cfg.smoothing_sigma)
    dna = ndi.gaussian_filter(dna, sigma)  # (N, H, W)
    dna_range = dna.reshape(n, -1).max(1) - dna.reshape(n, -1).min(1)
    contrast_ok = dna_range >= cfg.min_dna_contrast
    # nuclei foreground, holes filled within each crop (4-connected background off the border)
    fg = dna > otsu_thresholds(dna)[:, None, None]
    fg &= contrast_ok[:, None, None]
    fg = fill_holes(fg)
    if cfg.declump_h > 0:
        labels, n_labels = _declump(fg, dna, cfg.declump_h, cfg.declump_intensity_weight)
    else:
        labels, n_labels = ndi.label(fg, structure=_STACK_4)
    if n_labels:
        sizes = np.bincount(labels.ravel(), minlength=n_labels + 1)
        small = sizes < cfg.min_nucleus_area
        small[0] = False
        if small.any():
            labels[small[labels]] = 0
            labels, _, _ = relabel_sequential(labels)
            n_labels = int(labels.max())
    return labels, n_labels


def segment_batch(images: np.ndarray, *, config: SegmentationConfig | None = None) -> BatchSegmentation:
    """Segment the central nucleus, cell and cytoplasm of every crop in (N, 3, H, W)."""
    cfg = config or SegmentationConfig()
    x = _as_float_batch(images)
    n, _, h, w = x.shape
    empty = np.zeros((n, h, w), dtype=bool)
    if n == 0:
        return BatchSegmentation(empty, empty.copy(), empty.copy(), np.zeros(0, dtype=bool))
    sigma = (0.0, cfg.smoothing_sigma, cfg.smoothing_sigma)
    labels, n_labels = label_nuclei(x[:, 0], config=cfg)
    central = central_labels(labels, n_labels, cfg.max_centre_distance)
    has_nucleus = central > 0
    nucleus = (labels == central[:, None, None]) & has_nucleus[:, None, None]

    # cells: watershed from all nuclei on inverted actin+tubulin, inside foreground
    cyto = ndi.gaussian_filter(x[:, 1] + x[:, 2], sigma) / 2.0
    cyto_thr = otsu_thresholds(np.clip(cyto, 0.0, 1.0)) * cfg.cell_threshold_factor
    cell_fg = (cyto > cyto_thr[:, None, None]) | (labels > 0)
    ws = _stack_watershed(-cyto, labels, cell_fg)
    cell = (ws == central[:, None, None]) & has_nucleus[:, None, None]
    cell = fill_holes(cell)
    cell |= nucleus
    cytoplasm = cell & ~nucleus
    cyto_area = cytoplasm.reshape(n, -1).sum(1)
    weak = has_nucleus & (cyto_area < cfg.min_cytoplasm_area)
    if weak.any() and cfg.fallback_threshold_factor > 0:
        # only crops the primary pass left without cytoplasm: crops it segmented keep their masks exactly
        w = np.flatnonzero(weak)
        cell[w] = _propagate_tolerant(cyto[w], labels[w], central[w], cyto_thr[w] / cfg.cell_threshold_factor * cfg.fallback_threshold_factor)
        cell[w] |= nucleus[w]
        cytoplasm[w] = cell[w] & ~nucleus[w]
        cyto_area[w] = cytoplasm[w].reshape(len(w), -1).sum(1)
    # a cytoplasm below min_cytoplasm_area counts as empty: the cell is its nucleus and
    # Cytoplasm_* features are NaN, but the crop is still measured (only no nucleus fails)
    empty = cyto_area < max(cfg.min_cytoplasm_area, 1)
    cell[empty] = nucleus[empty]
    cytoplasm[empty] = False
    ok = has_nucleus
    nucleus &= ok[:, None, None]
    cell &= ok[:, None, None]
    cytoplasm &= ok[:, None, None]
    return BatchSegmentation(nucleus, cell, cytoplasm, ok)


def _propagate_tolerant(cyto: np.ndarray, labels: np.ndarray, central: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """Central cell of crops whose intensity watershed gave no cytoplasm (blurry or dim cells).

    Why the first pass fails there: a neighbour's seed floods the bright cytoplasm
    ring before the central nucleus' dim, blurred rim is reached. CellProfiler's
    propagation adds a spatial-distance term against exactly that; here the
    landscape is the distance to the nearest nucleus (Voronoi-like territories)
    minus a small share of the actin+tubulin signal, inside a more tolerant
    foreground (``thr``, a lower Otsu factor) union the nuclei.
    """
    n, h, w = cyto.shape
    nuclei = labels > 0
    pad = np.pad(~nuclei, ((0, 0), (1, 1), (1, 1)), constant_values=True)
    dist = ndi.distance_transform_edt(pad.reshape(n * (h + 2), w + 2)).reshape(n, h + 2, w + 2)[:, 1:-1, 1:-1]
    peak = np.maximum(cyto.reshape(n, -1).max(1), 1e-6)[:, None, None]
    landscape = dist - 2.0 * cyto / peak  # signal shifts borders by ≤ 2 px toward dim gaps
    fg = (cyto > thr[:, None, None]) | nuclei
    ws = _stack_watershed(landscape, labels, fg)
    cell = ws == central[:, None, None]
    return fill_holes(cell)


def segment(image: np.ndarray, *, config: SegmentationConfig | None = None) -> Segmentation:
    """Segment one crop (3, H, W) — DNA, Tubulin, Actin — into nucleus, cell, cytoplasm."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W) (DNA, Tubulin, Actin); got {image.shape}")
    return segment_batch(image[None], config=config)[0]

"""Pose control: turn each generated cell so its nucleus lies at the requested orientation.

Why this exists: neither bundled generator learnt Nuclei_AreaShape_Orientation as a
rotation (coupled ±2 SD sweeps gave median slope ≤ 0.04, docs/feature-control.md), and
retraining with an angular critic did not teach it. Orientation is a pose, not a
phenotype: turning a crop about its centre changes every AreaShape orientation by the
same known angle and leaves areas, intensities and shape descriptors unchanged. So the
generator draws the cell, we *measure* the orientation it drew, and we turn the image by
(requested − drawn) on the 180° period.

Which angle is aligned: the nucleus's. Turning the image turns the nucleus, cell and
cytoplasm together, so only one of the three requested angles can be met exactly. The
nucleus is the Fig. 4c feature the user sweeps, the central nucleus is the object the
segmentation finds most reliably in generated images, and the cell's axis relative to
the nucleus is what the generator drew from the profile (kept as drawn).

Measurement uses the feature code's own path, so "drawn" means what
`cp2image.features.measure` would report: the central nucleus found as
`cp2image.features.segmentation.segment_batch` finds it (its nucleus step: `label_nuclei`
and `central_labels`), and its orientation and eccentricity from the same cp_measure
moment primitives `cp2image.features.shape.measure_shape` calls (degrees in [−90, 90],
0° vertical, +45° the ↘ diagonal).

Left as drawn: images with no central nucleus (nothing to align), nuclei rounder than
``min_eccentricity`` (their axis is noise, a turn would only blur them), and turns
smaller than ``min_turn_deg`` (below the measurement's own precision). The turn is
bilinear and leaves the outer ``frame`` px as drawn: zero-padded generators (both bundled
models before their 32-filter retrainings of 2026-11-28) draw a 2–4 px frame along the crop edge,
and the cell segmentation leans on it; an edge-replicating generator draws none, and the kept
px are then simply its unturned edge (the figures below are the zero-padded sim model's); turned into the image or mirrored into the corners it
reads as cell boundaries or removes the background Otsu needs (plain reflection of the
whole crop dropped held-out r of cell area from 0.85 to 0.77 for `cp2image-sim`, a
kept 4 px frame gives 0.85). Points that leave the inner box are mirrored back into it,
so corners show reflected cell, never black. The box fades into the kept frame over
``feather`` px, so a turned image shows a short ramp, not a hard square seam, 4 px inside
its edge (orientation sweeps of 12 held-out `cp2image-sim` cells: mean step across that
line 15.4 grey levels hard, 5.4 with 3 px, 3.7 in the unturned images; nucleus angle error
unchanged, median 0.9°).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from cp_measure.primitives._moments import axes_eccentricity_orientation, inertia_2d, spatial_moments_2d

from cp2image.features.segmentation import SegmentationConfig, central_labels, label_nuclei

POSE_FEATURE = "Nuclei_AreaShape_Orientation"
PERIOD_DEG = 180.0


@dataclass(frozen=True)
class PoseConfig:
    """When and how generated images are turned to the requested nucleus orientation."""

    min_eccentricity: float = 0.3  # rounder nuclei (axis ratio > 0.95) keep their drawn pose
    min_turn_deg: float = 1.0  # smaller corrections are not worth a resampling
    frame: int = 4  # outer px kept as drawn (the generators' edge frame); see `rotate_images`
    feather: int = 3  # px over which the turned box fades into the kept frame (no hard square seam)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)


@dataclass
class PoseResult:
    """Aligned images and what was done to each."""

    images: np.ndarray  # uint8 (N, C, H, W)
    drawn: np.ndarray  # (N,) nucleus orientation the generator drew, degrees; NaN: no nucleus
    eccentricity: np.ndarray  # (N,) of the drawn nucleus; NaN: no nucleus
    turned: np.ndarray  # (N,) degrees the image was turned (0: left as drawn)

    @property
    def n_turned(self) -> int:
        return int(np.count_nonzero(self.turned))


def wrap_angle(degrees: np.ndarray | float, period: float = PERIOD_DEG) -> np.ndarray:
    """Angles onto [−period/2, period/2): an axis at +100° is the axis at −80°."""
    d = np.asarray(degrees, dtype=np.float64)
    return (d + period / 2) % period - period / 2


def nucleus_orientation(images: np.ndarray, *, segmentation: SegmentationConfig | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(orientation in degrees, eccentricity) of each crop's central nucleus; NaN where none is found.

    Same segmentation and moment primitives as `measure`'s Nuclei_AreaShape_Orientation
    and _Eccentricity; each nucleus gets its own label in one tall label image (moments are
    taken in each object's bounding box, so the layout does not change them).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    n = images.shape[0]
    orientation = np.full(n, np.nan)
    eccentricity = np.full(n, np.nan)
    if n == 0:
        return orientation, eccentricity
    cfg = segmentation or SegmentationConfig()
    # step 1 of `segment_batch` (the nucleus) alone: the cell watershed would cost as much again
    labels, n_labels = label_nuclei(images[:, 0].astype(np.float32) / 255.0, config=cfg)
    central = central_labels(labels, n_labels, cfg.max_centre_distance)
    ok = np.flatnonzero(central > 0)
    if ok.size == 0:
        return orientation, eccentricity
    masks = labels[ok] == central[ok, None, None]
    labels = masks * np.arange(1, ok.size + 1, dtype=np.int32)[:, None, None]
    _, central, _, _ = spatial_moments_2d(labels.reshape(-1, masks.shape[-1]))
    _, _, ecc, orient = axes_eccentricity_orientation(inertia_2d(central))
    orientation[ok] = orient * (180.0 / np.pi)
    eccentricity[ok] = ecc
    return orientation, eccentricity


def _reflect_into(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Mirror coordinates into [lo, hi] (a triangle wave), as reflection padding does at the box edges."""
    span = hi - lo
    t = np.remainder(x - lo, 2 * span)
    return lo + np.where(t > span, 2 * span - t, t)


def _turned_weight(h: int, w: int, frame: int, feather: int) -> np.ndarray:
    """(H, W) share of the turned image: 0 in the kept frame, rising over ``feather`` px inside it, then 1."""
    if frame == 0:
        return np.ones((h, w), dtype=np.float32)
    r, c = np.arange(h)[:, None], np.arange(w)[None, :]
    depth = np.minimum(np.minimum(r - frame, h - 1 - frame - r), np.minimum(c - frame, w - 1 - frame - c))
    return np.clip((depth + 1) / (feather + 1), 0.0, 1.0).astype(np.float32)


def rotate_images(images: np.ndarray, degrees: np.ndarray, *, frame: int = 0, feather: int = 0) -> np.ndarray:
    """Turn each uint8 (C, H, W) image about its centre so orientations rise by ``degrees``.

    "Rise" is in the AreaShape convention: an axis along (row, col) = (cos θ, sin θ) ends
    along (cos(θ + δ), sin(θ + δ)). Bilinear sampling. With ``frame`` = k > 0 only the box
    k px inside the edge turns: the outer k px stay as drawn, and points that leave the
    box are mirrored back into it, so corners show reflected cell, never black, and a
    generator's edge frame is neither turned into the image nor mirrored into the
    corners. ``frame=0`` turns the whole image with plain reflection at its edge.
    ``feather`` = f > 0 (with a frame) blends the box's outer f px linearly from the drawn
    image to the turned one (depth d takes (d + 1)/(f + 1) of the turn), so the boundary
    between kept frame and turned box is a short ramp, not a square seam in the picture.

    Plain numpy (a gather of the four neighbours): the work is ~0.1 M pixels per Generate
    page, where torch's ``grid_sample`` spent more time waking its threads than sampling.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    n, _, h, w = images.shape
    delta = np.radians(np.asarray(degrees, dtype=np.float64).reshape(-1))
    if delta.shape[0] != n:
        raise ValueError(f"{delta.shape[0]} angles for {n} images")
    if not 0 <= 2 * frame < min(h, w) - 1:
        raise ValueError(f"frame {frame} leaves no image inside a {h}×{w} crop")
    if n == 0:
        return images.copy()
    cos, sin = np.cos(delta)[:, None, None], np.sin(delta)[:, None, None]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows = np.arange(h, dtype=np.float64)[None, :, None] - cy
    cols = np.arange(w, dtype=np.float64)[None, None, :] - cx
    # each output pixel samples the input at the inverse turn: R(−δ) in (row, col) coordinates
    src_r = _reflect_into(cos * rows + sin * cols + cy, float(frame), float(h - 1 - frame))
    src_c = _reflect_into(-sin * rows + cos * cols + cx, float(frame), float(w - 1 - frame))
    r0 = np.minimum(np.floor(src_r).astype(np.intp), h - 2)
    c0 = np.minimum(np.floor(src_c).astype(np.intp), w - 2)
    fr = (src_r - r0)[:, None].astype(np.float32)  # (N, 1, H, W) weights of the lower/right neighbours
    fc = (src_c - c0)[:, None].astype(np.float32)
    flat = images.reshape(n, images.shape[1], h * w).astype(np.float32)
    k = np.arange(n)[:, None, None, None]
    ch = np.arange(images.shape[1])[None, :, None, None]

    def at(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return flat[k, ch, (r * w + c)[:, None]]

    top = at(r0, c0) * (1 - fc) + at(r0, c0 + 1) * fc
    bottom = at(r0 + 1, c0) * (1 - fc) + at(r0 + 1, c0 + 1) * fc
    turned = top * (1 - fr) + bottom * fr
    if frame:  # the frame (weight 0) stays as drawn; weight 1 inside the feather keeps the turn exact
        weight = _turned_weight(h, w, frame, feather)
        turned = weight * turned + (1 - weight) * images.astype(np.float32)
    return np.clip(np.rint(turned), 0, 255).astype(np.uint8)


def align_orientation(images: np.ndarray, requested: np.ndarray, *, config: PoseConfig | None = None) -> PoseResult:
    """Turn every image whose nucleus has a defined axis to the requested orientation (degrees).

    ``requested`` are raw angles in degrees, any real value (wrapped onto the 180° period);
    non-finite entries leave their image as drawn.
    """
    cfg = config or PoseConfig()
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    requested = np.asarray(requested, dtype=np.float64).reshape(-1)
    if requested.shape[0] != images.shape[0]:
        raise ValueError(f"{requested.shape[0]} requested angles for {images.shape[0]} images")
    drawn, ecc = nucleus_orientation(images, segmentation=cfg.segmentation)
    with np.errstate(invalid="ignore"):
        turn = wrap_angle(requested - drawn)
        act = np.isfinite(turn) & (ecc >= cfg.min_eccentricity) & (np.abs(turn) >= cfg.min_turn_deg)
    turned = np.where(act, turn, 0.0)
    out = images.copy()
    idx = np.flatnonzero(act)
    if idx.size:
        out[idx] = rotate_images(images[idx], turned[idx], frame=cfg.frame, feather=cfg.feather)
    return PoseResult(images=out, drawn=drawn, eccentricity=ecc, turned=turned)


def requested_angles(raw: np.ndarray, feature_names: list[str], feature: str = POSE_FEATURE) -> np.ndarray | None:
    """The requested angle column of raw (N, p) profiles in model order, or None if the model has none."""
    if feature not in feature_names:
        return None
    return np.asarray(raw, dtype=np.float64)[:, feature_names.index(feature)]


__all__ = ["POSE_FEATURE", "PoseConfig", "PoseResult", "align_orientation", "nucleus_orientation",
           "requested_angles", "rotate_images", "wrap_angle"]

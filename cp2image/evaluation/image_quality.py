"""Image statistics that CellProfiler features miss: an edge frame, straight streaks, actin puncta.

Each was first seen by eye in generated crops (docs/generator-ablation.md) and is compared with
the same statistic on the real crops, because only the ratio to real means anything:

- **edge frame**: mean |Laplacian| on a crop's outermost ring of pixels over the same in a ring 3–9
  pixels inside. Zero-padded convolutions draw a bright or dark frame (ratio ≫ 1); real crops sit near 1.
- **streak index**: median over crops of |log(E_x / E_y)|, E the mean squared difference between
  horizontal (vertical) neighbours. Fibres of random direction score low; straight row or column
  streaks, an up-sampling artefact, score high.
- **actin puncta**: connected spots of the actin channel's white top-hat (a 5 × 5 grey opening)
  brighter than 80 grey levels and 2–12 pixels large, per crop. Latrunculin B breaks F-actin into
  such spots (simulated screen: ~13 per crop at 3 µM against ~1.5 in DMSO; real BBBC021 crops are
  dimmer, ~2.7 against ~0.3); a generator that averages detail away draws none.

Crops are read in chunks, so a large evaluation never holds a float copy of all of them.

Images are uint8 arrays (n, channels, height, width) as `CP2Image.generate` returns them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from cp2image.channels import CHANNELS


@dataclass(frozen=True)
class PunctaConfig:
    """What counts as a punctum: a top-hat spot above `threshold` grey levels, min_area..max_area pixels."""

    opening: int = 5  # side of the square grey opening; spots narrower than this survive the top-hat
    threshold: float = 80.0  # grey levels above the opened image
    min_area: int = 2
    max_area: int = 12
    channel: str = "Actin"


CHUNK = 256  # crops converted to float at a time


def _check(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (n, channels, height, width), got shape {images.shape}")
    if min(images.shape[-2:]) < 20:
        raise ValueError(f"crops of {images.shape[-2]} × {images.shape[-1]} px are too small for these statistics "
                         "(the frame compares rings up to 9 px inside)")
    return images


def _chunks(images: np.ndarray):
    for start in range(0, len(images), CHUNK):
        yield images[start:start + CHUNK].astype(np.float64)


def abs_laplacian(images: np.ndarray) -> np.ndarray:
    """|4·x − its four neighbours| on interior pixels: (n, c, h − 2, w − 2)."""
    x = images
    return np.abs(4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:])


def _ring_mask(h: int, w: int, inner: int, outer: int) -> np.ndarray:
    """Pixels whose distance to the nearest border is in [inner, outer]."""
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    distance = np.minimum(np.minimum(rows, h - 1 - rows), np.minimum(cols, w - 1 - cols))
    return (distance >= inner) & (distance <= outer)


def edge_frame_ratio(images: np.ndarray) -> float:
    """Mean |Laplacian| on the outermost computable ring over the mean 3–9 px inside (see module doc)."""
    images = _check(images)
    h, w = images.shape[-2] - 2, images.shape[-1] - 2  # the Laplacian's interior
    inside_mask, edge_mask = _ring_mask(h, w, 2, 8), _ring_mask(h, w, 0, 0)  # 3–9 px and 1 px from the edge
    inside = edge = 0.0
    for chunk in _chunks(images):
        lap = abs_laplacian(chunk)
        inside += lap[..., inside_mask].sum()
        edge += lap[..., edge_mask].sum()
    inside /= len(images) * images.shape[1] * inside_mask.sum()
    edge /= len(images) * images.shape[1] * edge_mask.sum()
    return float(edge / inside) if inside > 0 else float("nan")


def streak_index(images: np.ndarray) -> float:
    """Median over crops of |log(E_x / E_y)| (see module doc); 0 for isotropic texture."""
    e_x, e_y = [], []
    for x in _chunks(_check(images)):
        e_x.append((np.diff(x, axis=3) ** 2).mean(axis=(1, 2, 3)))
        e_y.append((np.diff(x, axis=2) ** 2).mean(axis=(1, 2, 3)))
    e_x, e_y = np.concatenate(e_x), np.concatenate(e_y)
    ok = (e_x > 0) & (e_y > 0)
    if not ok.any():
        return float("nan")
    return float(np.median(np.abs(np.log(e_x[ok] / e_y[ok]))))


def count_puncta(images: np.ndarray, config: PunctaConfig | None = None, *,
                 channels: tuple[str, ...] = CHANNELS) -> np.ndarray:
    """Puncta per crop in `config.channel` (see module doc): an int array of length n."""
    config = config or PunctaConfig()
    if config.channel not in channels:
        raise ValueError(f"no {config.channel!r} channel among {channels}")
    plane = _check(images)[:, channels.index(config.channel)]
    counts = np.zeros(len(plane), dtype=np.int64)
    for i, crop in enumerate(plane):
        crop = crop.astype(np.float64)
        tophat = crop - ndi.grey_opening(crop, size=(config.opening, config.opening))
        labels, n = ndi.label(tophat > config.threshold)
        if n:
            areas = np.bincount(labels.ravel())[1:]
            counts[i] = int(((areas >= config.min_area) & (areas <= config.max_area)).sum())
    return counts


@dataclass(frozen=True)
class ImageQuality:
    """The three statistics for one set of crops."""

    n: int
    edge_frame: float
    streak: float
    puncta_per_crop: float

    @classmethod
    def of(cls, images: np.ndarray, *, channels: tuple[str, ...] = CHANNELS,
           puncta: np.ndarray | None = None) -> "ImageQuality":
        """`puncta`: the crops' `count_puncta`, when the caller already has them (counted once, not twice)."""
        puncta = count_puncta(images, channels=channels) if puncta is None else puncta
        return cls(n=len(images), edge_frame=edge_frame_ratio(images), streak=streak_index(images),
                   puncta_per_crop=float(puncta.mean()))


def quality_summary(real: np.ndarray, generated: np.ndarray, labels: np.ndarray | None = None, *,
                    channels: tuple[str, ...] = CHANNELS) -> dict:
    """metrics.json's `image_quality` section: each statistic for real and generated crops, and puncta per class.

    `labels` (one per crop, generated crop i drawn for real cell i) adds the mean puncta per class, real beside
    generated: the actin-disruptor rows are the ones to read.
    """
    if labels is not None and not len(labels) == len(real) == len(generated):
        raise ValueError(f"{len(labels)} labels for {len(real)} real and {len(generated)} generated crops")
    real_n, gen_n = count_puncta(real, channels=channels), count_puncta(generated, channels=channels)
    out: dict = {"real": asdict(ImageQuality.of(real, channels=channels, puncta=real_n)),
                 "generated": asdict(ImageQuality.of(generated, channels=channels, puncta=gen_n)),
                 "puncta": asdict(PunctaConfig())}
    if labels is not None:
        labels = np.asarray(labels).astype(str)
        out["puncta_by_class"] = [
            {"class": c, "n": int((labels == c).sum()), "real": float(real_n[labels == c].mean()),
             "generated": float(gen_n[labels == c].mean())} for c in sorted(set(labels))]
    return out

"""`measure(images)`: segment every crop and compute CellProfiler-named features.

Work is split into chunks of crops. Each chunk is segmented in one vectorised
pass, and every measurement group runs once on the chunk's (N, H, W) stacks of
successful crops and masks; AreaShape's hull and Zernike coordinates are those of
the crops tiled on a mosaic (`mosaic.py`). Chunks run as dask tasks when
a `client` is given (or ``n_jobs > 1``, which starts a LocalCluster of that many
worker processes), in this process otherwise. Crops whose segmentation fails (no central nucleus)
get NaN features and ``Metadata_Segmentation_Failed=True``; a crop whose
cytoplasm is empty is not failed: its Cytoplasm_* features are NaN, the
nucleus and cell are measured. Nothing raises for a bad crop.

The default set (frozen: datasets and models are built on these names), 492 features:

=================== ===== ===================================================================
group               count per compartment × channel
=================== ===== ===================================================================
AreaShape           117   19 size/shape measures × 3 compartments + 30 Zernike (Nuclei, Cells)
Intensity           135   15 statistics × 3 compartments × 3 channels
Texture             117   13 Haralick features, scale 3, direction 00, 256 levels, × 9
Granularity          24   spectrum 1–8 × 3 channels, Cells
RadialDistribution   36   FracAtD / MeanFrac / RadialCV × 4 rings × 3 channels, Cells
Correlation          63   Correlation, Slope, Overlap, Manders ×2, RWC ×2 × 3 pairs × 3
=================== ===== ===================================================================

Results do not depend on ``n_jobs`` or the cluster; they depend on a crop's position within its
chunk only through Zernike moments' minimum enclosing circle (~1e-3).
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..channels import CHANNELS
from ..data.columns import FAILED_COLUMN
from .correlation import correlation_columns, measure_correlation
from .granularity import GranularityConfig, granularity_columns, measure_granularity
from .intensity import intensity_columns, measure_intensity
from .mosaic import Mosaic, mosaic_layout
from .radial import measure_radial, radial_columns
from .segmentation import SegmentationConfig, segment_batch
from .shape import edge_distance, measure_shape, shape_columns
from .texture import measure_texture, texture_columns

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

COMPARTMENTS: tuple[str, ...] = ("Nuclei", "Cells", "Cytoplasm")
ALL_GROUPS: tuple[str, ...] = ("AreaShape", "Intensity", "Texture", "Granularity", "RadialDistribution", "Correlation")


@dataclass(frozen=True)
class MeasureConfig:
    """What to measure and how to split the work. The defaults are the frozen feature set."""

    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    groups: tuple[str, ...] = ALL_GROUPS  # measurement groups to run, in output order
    texture_scale: int = 3  # Haralick pixel offset
    texture_directions: tuple[int, ...] = (0,)  # CellProfiler direction indexes (0 = horizontal)
    granularity: GranularityConfig = field(default_factory=GranularityConfig)
    granularity_compartments: tuple[str, ...] = ("Cells",)
    radial_bins: int = 4
    radial_compartments: tuple[str, ...] = ("Cells",)
    correlation_measures: tuple[str, ...] = ("Correlation", "Slope", "Overlap", "Manders", "RWC")
    correlation_threshold: float = 15.0  # % of the object's max, CellProfiler's default
    zernike_compartments: tuple[str, ...] = ("Nuclei", "Cells")
    chunk_size: int = 128  # crops per vectorised batch / per task (results do not depend on n_jobs)


class _Batch:
    """One chunk's successfully segmented crops, in the forms the groups need."""

    def __init__(self, images: np.ndarray, masks: dict[str, np.ndarray]):
        self.q = images  # uint8 (n, 3, H, W)
        self.masks = masks  # compartment → bool (n, H, W)
        self._x: np.ndarray | None = None
        self._mosaic: Mosaic | None = None
        self._edge: dict[str, np.ndarray] = {}

    @property
    def x(self) -> np.ndarray:
        """float64 in [0, 1], as CellProfiler scales 8-bit images."""
        if self._x is None:
            self._x = self.q.astype(np.float64) / 255.0
        return self._x

    def edge_distance(self, compartment: str) -> np.ndarray:
        """Distance to the object's edge, shared by AreaShape's radii and RadialDistribution."""
        if compartment not in self._edge:
            self._edge[compartment] = edge_distance(self.masks[compartment])
        return self._edge[compartment]

    @property
    def mosaic(self) -> Mosaic:
        if self._mosaic is None:
            n, _, h, w = self.q.shape
            self._mosaic = mosaic_layout(n, h, w)  # tile origins only: the groups work on the stacks
        return self._mosaic


def _pick(masks: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {c: masks[c] for c in COMPARTMENTS if c in names}


def _areashape(b: _Batch, cfg: MeasureConfig) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for comp in COMPARTMENTS:
        out.update(measure_shape(b.mosaic, comp, stack=b.masks[comp], zernike=comp in cfg.zernike_compartments,
                                 dist=b.edge_distance(comp)))
    return out


def _intensity(b: _Batch, cfg: MeasureConfig) -> dict[str, np.ndarray]:
    return measure_intensity(b.q, b.masks, CHANNELS)


def _texture(b: _Batch, cfg: MeasureConfig) -> dict[str, np.ndarray]:
    return measure_texture(b.q, b.masks, CHANNELS, scale=cfg.texture_scale, directions=cfg.texture_directions)


def _granularity(b: _Batch, cfg: MeasureConfig) -> dict[str, np.ndarray]:
    return measure_granularity(b.x, _pick(b.masks, cfg.granularity_compartments), CHANNELS, cfg.granularity)


def _radial(b: _Batch, cfg: MeasureConfig) -> dict[str, np.ndarray]:
    masks = _pick(b.masks, cfg.radial_compartments)
    return measure_radial(b.x, masks, CHANNELS, bins=cfg.radial_bins,
                          edge={c: b.edge_distance(c) for c in masks})


def _correlation(b: _Batch, cfg: MeasureConfig) -> dict[str, np.ndarray]:
    return measure_correlation(
        b.q, b.masks, CHANNELS, measures=cfg.correlation_measures, thr=cfg.correlation_threshold
    )


GroupColumns = Callable[[MeasureConfig], list[str]]
GROUPS: dict[str, tuple[GroupColumns, Callable[[_Batch, MeasureConfig], dict[str, np.ndarray]]]] = {
    "AreaShape": (
        lambda cfg: [c for comp in COMPARTMENTS for c in shape_columns(comp, zernike=comp in cfg.zernike_compartments)],
        _areashape,
    ),
    "Intensity": (lambda cfg: [c for comp in COMPARTMENTS for c in intensity_columns(comp, CHANNELS)], _intensity),
    "Texture": (
        lambda cfg: [
            c
            for comp in COMPARTMENTS
            for c in texture_columns(comp, CHANNELS, scale=cfg.texture_scale, directions=cfg.texture_directions)
        ],
        _texture,
    ),
    "Granularity": (
        lambda cfg: [
            c for comp in COMPARTMENTS if comp in cfg.granularity_compartments
            for c in granularity_columns(comp, CHANNELS, cfg.granularity)
        ],
        _granularity,
    ),
    "RadialDistribution": (
        lambda cfg: [
            c for comp in COMPARTMENTS if comp in cfg.radial_compartments
            for c in radial_columns(comp, CHANNELS, bins=cfg.radial_bins)
        ],
        _radial,
    ),
    "Correlation": (
        lambda cfg: [
            c for comp in COMPARTMENTS for c in correlation_columns(comp, CHANNELS, measures=cfg.correlation_measures)
        ],
        _correlation,
    ),
}
assert tuple(GROUPS) == ALL_GROUPS


def feature_names(config: MeasureConfig | None = None) -> list[str]:
    """Column names `measure` returns (features only), in output order."""
    cfg = config or MeasureConfig()
    unknown = [g for g in cfg.groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"unknown measurement group(s) {unknown}; choose from {list(GROUPS)}")
    return [c for g in cfg.groups for c in GROUPS[g][0](cfg)]


def _measure_chunk(images: np.ndarray, cfg: MeasureConfig) -> pd.DataFrame:
    """Features for one chunk of crops (N, 3, H, W) → DataFrame with N rows."""
    names = feature_names(cfg)
    n = images.shape[0]
    seg = segment_batch(images, config=cfg.segmentation)
    values = np.full((n, len(names)), np.nan, dtype=np.float64)
    ok_idx = np.flatnonzero(seg.ok)
    if ok_idx.size:
        masks = {"Nuclei": seg.nucleus[ok_idx], "Cells": seg.cell[ok_idx], "Cytoplasm": seg.cytoplasm[ok_idx]}
        # an empty compartment (cytoplasm of a cell that is all nucleus) has no defined features;
        # measure a stand-in (its nucleus) so every group sees one object per crop, then NaN it
        no_cyto = ~masks["Cytoplasm"].reshape(ok_idx.size, -1).any(1)
        if no_cyto.any():
            masks["Cytoplasm"] = masks["Cytoplasm"].copy()
            masks["Cytoplasm"][no_cyto] = masks["Nuclei"][no_cyto]
        batch = _Batch(images[ok_idx], masks)
        col = {name: i for i, name in enumerate(names)}
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            for g in cfg.groups:
                for name, v in GROUPS[g][1](batch, cfg).items():
                    v = np.asarray(v, dtype=np.float64)
                    if v.shape != (ok_idx.size,):
                        raise RuntimeError(f"group {g} returned {v.shape} values for {name}; expected {ok_idx.size}")
                    values[ok_idx, col[name]] = v
        if no_cyto.any():
            cyto_cols = [i for name, i in col.items() if name.startswith("Cytoplasm_")]
            values[np.ix_(ok_idx[no_cyto], cyto_cols)] = np.nan
    frame = pd.DataFrame(values, columns=names)
    frame[FAILED_COLUMN] = ~seg.ok
    return frame


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _resolve_jobs(n_jobs: int | None) -> int:
    from cp2image.distributed.cluster import available_cores

    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, available_cores() + 1 + n_jobs)
    return int(n_jobs)


def _check_images(images: np.ndarray) -> None:
    if images.ndim != 4 or images.shape[1] != len(CHANNELS):
        raise ValueError(
            f"images must have shape (N, 3, H, W) with channels {CHANNELS}; got {tuple(images.shape)}"
        )
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0-255); got dtype {images.dtype}. Rescale first, e.g. (x * 255).astype(np.uint8)")


def iter_measure(
    images: np.ndarray,
    *,
    client: "Client | None" = None,
    config: MeasureConfig | None = None,
) -> Iterator[tuple[slice, pd.DataFrame]]:
    """Yield `(rows, features)` chunk by chunk, in order, so a caller can stream them to disk.

    With a dask `client` each chunk is one task (a bounded number in flight, so a
    memory-mapped array is read only as the work proceeds); without, chunks are
    measured one after another in this process. `measure` is this, concatenated.
    """
    cfg = config or MeasureConfig()
    _check_images(images)
    feature_names(cfg)  # validates the group list early
    slices = list(_chunks(images.shape[0], cfg.chunk_size))
    if client is None:
        for s in slices:
            yield s, _measure_chunk(np.ascontiguousarray(images[s]), cfg)
        return
    from cp2image.distributed import ordered_results

    work = ((s, np.ascontiguousarray(images[s])) for s in slices)  # read lazily from a memmap
    for (s, _), frame in ordered_results(client, partial(_measure_task, cfg=cfg), work):
        yield s, frame


def _measure_task(item: tuple[slice, np.ndarray], *, cfg: MeasureConfig) -> pd.DataFrame:
    """One dask task: a chunk of crops in, its feature rows out (module level, so it pickles)."""
    return _measure_chunk(item[1], cfg)


def measure(
    images: np.ndarray,
    *,
    n_jobs: int | None = None,
    client: "Client | None" = None,
    progress: bool = False,
    config: MeasureConfig | None = None,
) -> pd.DataFrame:
    """Measure CellProfiler-style features on crops.

    Args:
        images: uint8 (N, 3, H, W), channels DNA, Tubulin, Actin (a memmap is fine:
            only the chunks in flight are read).
        n_jobs: without `client`: None/1 = in this process; N > 1 = a LocalCluster
            of N worker processes for this call; -1 = one per core.
        client: a dask `distributed.Client`; every chunk becomes one task on it.
        progress: show a tqdm bar over crops.
        config: groups to measure, chunk size, segmentation parameters.

    Returns:
        One row per crop in input order (RangeIndex): feature columns named
        ``{Compartment}_{Group}_{Measure}[_{Channel}]`` plus
        ``Metadata_Segmentation_Failed`` (bool; NaN features where True).
    """
    cfg = config or MeasureConfig()
    _check_images(images)
    n = images.shape[0]
    if n == 0:
        feature_names(cfg)
        return _measure_chunk(np.zeros((0, *images.shape[1:]), np.uint8), cfg)
    if client is None and _resolve_jobs(n_jobs) > 1 and n > cfg.chunk_size:
        from cp2image.distributed import ClusterConfig, dask_client

        workers = min(_resolve_jobs(n_jobs), -(-n // cfg.chunk_size))
        with dask_client(ClusterConfig(n_workers=workers)) as local:
            return measure(images, client=local, progress=progress, config=cfg)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="crop", desc="measuring")
    parts: list[pd.DataFrame] = []
    for s, part in iter_measure(images, client=client, config=cfg):
        parts.append(part)
        if bar is not None:
            bar.update(s.stop - s.start)
    if bar is not None:
        bar.close()
    frame = pd.concat(parts, ignore_index=True)
    n_failed = int(frame[FAILED_COLUMN].sum())
    if n_failed:
        log.info("segmentation failed on %d of %d crops (NaN features, %s=True)", n_failed, n, FAILED_COLUMN)
    return frame

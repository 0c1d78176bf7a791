"""The real side of an evaluation, computed once and shared by every model (`RealReference`).

Held-out cells with finite profiles are picked and their crops measured; a sample
of training crops is measured for the MoA classifier; the domain encoder is trained
(or loaded) and the Inception features extracted when weights are supplied.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.data.columns import FAILED_COLUMN, PLATE, SPLIT, WELL
from cp2image.data.dataset import Dataset, DatasetError, open_dataset
from cp2image.evaluation.config import MOA_GROUPINGS, EvaluationConfig
from cp2image.evaluation.encoder import DomainEncoder, train_domain_encoder
from cp2image.evaluation.inception import InceptionExtractor, InceptionUnavailable

logger = logging.getLogger(__name__)


@dataclass
class RealReference:
    """Everything about the real held-out (and training) cells; shared by all models."""

    dataset_path: str
    split: str
    rows: np.ndarray  # dataset row indices of the evaluated held-out cells
    cells: pd.DataFrame  # their table rows (RangeIndex)
    images: np.ndarray  # their crops, uint8 (N, 3, H, W), in RAM
    measured: pd.DataFrame  # features measured on these crops
    n_heldout: int  # held-out cells before filtering/subsampling
    n_excluded: int  # held-out cells dropped for non-finite profiles
    labels: np.ndarray | None  # class label per held-out cell (label_column), or None
    train_measured: pd.DataFrame | None
    train_labels: np.ndarray | None
    encoder: DomainEncoder | None
    encoder_note: str
    encoder_embedding: np.ndarray | None
    inception: InceptionExtractor | None
    inception_note: str
    inception_features: np.ndarray | None
    inception_subset: np.ndarray | None = None  # positions (into rows) of the cells Inception sees
    moa_grouping: str = "split"  # resolved MoA protocol: "plate", "well" or "split"
    groups: np.ndarray | None = None  # plate or plate/well of each held-out cell (grouped protocols)
    train_groups: np.ndarray | None = None  # the same for the classifier's training cells
    timings: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers


class Timer:
    """`with Timer(timings, "step"):` records the step's wall time (s, 3 decimals) in `timings`."""

    def __init__(self, sink: dict[str, float], name: str) -> None:
        self.sink, self.name = sink, name

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sink[self.name] = round(time.perf_counter() - self.start, 3)


def _as_dataset(dataset: Dataset | str | os.PathLike) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else open_dataset(dataset)


def _finite_rows(cells: pd.DataFrame, features: list[str]) -> np.ndarray:
    if not features:
        return np.ones(len(cells), dtype=bool)
    values = cells[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(values).all(axis=1)
    if FAILED_COLUMN in cells.columns:
        ok &= ~cells[FAILED_COLUMN].fillna(False).to_numpy(dtype=bool)
    return ok


def _labels(cells: pd.DataFrame, column: str) -> np.ndarray | None:
    if column not in cells.columns:
        return None
    labels = cells[column].astype(str).to_numpy()
    return labels if len(np.unique(labels)) >= 2 else None


def measure_crops(images: np.ndarray, config: EvaluationConfig, desc: str) -> pd.DataFrame:
    """CellProfiler features of crops, measured with `cp2image.features.measure` (real and generated alike)."""
    from cp2image.features import measure

    logger.info("measuring CellProfiler features on %d %s crops", len(images), desc)
    return measure(np.asarray(images), n_jobs=config.n_jobs, progress=config.progress)


def _real_profiles(ds: Dataset, rows: np.ndarray, config: EvaluationConfig, desc: str) -> pd.DataFrame:
    """Profiles of real crops: measured here, or read from the dataset (config.real_features)."""
    if config.real_features == "measure":
        return measure_crops(np.asarray(ds.images[rows]), config, desc)
    if config.real_features != "stored":
        raise ValueError(f"real_features must be 'measure' or 'stored', got {config.real_features!r}")
    provenance = ds.meta.get("provenance") or {}
    method = provenance.get("features")
    if method is None and str(provenance.get("source", "")).startswith("cp2image simulate") \
            and provenance.get("features_measured"):
        method = "cp2image.features.measure"  # screens simulated before the key was written
    if method != "cp2image.features.measure":
        raise DatasetError(f"{ds.path}: real_features='stored' needs features measured by cp2image.features.measure "
                           f"(provenance says {method!r}); measure them here instead")
    names = [f for f in ds.feature_names if f in ds.cells.columns]
    if len(names) < len(ds.feature_names):
        raise DatasetError(f"{ds.path}: stored profiles lack {len(ds.feature_names) - len(names)} listed features")
    columns = names + ([FAILED_COLUMN] if FAILED_COLUMN in ds.cells.columns else [])
    logger.info("using the stored profiles of %d %s crops", len(rows), desc)
    return ds.cells.iloc[rows][columns].reset_index(drop=True)


def sample_rows(rows: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of `rows` of at most `limit`, sorted (all rows when limit is None)."""
    if limit is None or len(rows) <= limit:
        return rows
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=int(limit), replace=False))


def group_keys(cells: pd.DataFrame, grouping: str) -> np.ndarray:
    """Plate, or plate/well, of each cell (the unit the MoA classifier must not see twice)."""
    if grouping == "plate":
        return cells[PLATE].astype(str).to_numpy()
    plate = cells[PLATE].astype(str) if PLATE in cells.columns else ""
    return (plate + "/" + cells[WELL].astype(str)).to_numpy()


def _train_rows(ds: Dataset) -> np.ndarray:
    return ds.split_indices("train") if SPLIT in ds.cells.columns else np.array([], int)


def resolve_moa_grouping(cells: pd.DataFrame, heldout: np.ndarray, train: np.ndarray, requested: str) -> str:
    """Which unit the MoA classifier keeps apart: "plate", "well" or "split" (see EvaluationConfig.moa_groups)."""
    if requested not in MOA_GROUPINGS:
        raise ValueError(f"moa_groups must be one of {MOA_GROUPINGS}, got {requested!r}")
    if requested == "split":
        return "split"
    need = {"plate": [PLATE], "well": [WELL]}
    if requested != "auto":
        missing = [c for c in need[requested] if c not in cells.columns]
        if missing:
            raise ValueError(f"moa_groups={requested!r} needs column(s) {missing}; use 'split' or another grouping")
        return requested
    if PLATE in cells.columns:
        plates = cells[PLATE].astype(str).to_numpy()
        if not set(plates[heldout]) & set(plates[train]):
            return "plate"
    return "well" if WELL in cells.columns else "split"


# ----------------------------------------------------------------------------- building it


def _heldout_rows(ds: Dataset, config: EvaluationConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(all held-out rows, finite-profile mask over them, the evaluated sample of rows)."""
    names = [part.strip() for part in config.split.split(",") if part.strip()]
    heldout = np.unique(np.concatenate([ds.split_indices(name) for name in names])) if names else np.array([], int)
    if len(heldout) == 0:
        splits = sorted(ds.cells[SPLIT].astype(str).unique()) if SPLIT in ds.cells else []
        raise DatasetError(f"{ds.path}: no cells in split {config.split!r} (splits present: {splits})")
    features = [f for f in ds.feature_names if f in ds.cells.columns]
    ok = _finite_rows(ds.cells.iloc[heldout], features)
    usable = heldout[ok]
    if len(usable) < 2:
        raise DatasetError(
            f"{ds.path}: only {len(usable)} cell(s) in split {config.split!r} have finite profiles; need ≥ 2"
        )
    return heldout, ok, sample_rows(usable, config.max_cells, config.seed)


@dataclass
class _ClassifierData:
    """Real training cells for the MoA classifier, measured like the held-out ones."""

    measured: pd.DataFrame | None = None
    labels: np.ndarray | None = None
    groups: np.ndarray | None = None


def _classifier_training(ds: Dataset, config: EvaluationConfig, grouping: str, has_labels: bool,
                         timings: dict[str, float]) -> _ClassifierData:
    train_rows = _train_rows(ds)
    if not has_labels or not len(train_rows):
        return _ClassifierData()
    train_rows = sample_rows(train_rows, config.max_train_cells, config.seed + 1)
    labels = _labels(ds.cells.iloc[train_rows], config.label_column)
    if labels is None:
        return _ClassifierData()
    with Timer(timings, "measure_train"):
        measured = _real_profiles(ds, train_rows, config, "real training")
    groups = group_keys(ds.cells.iloc[train_rows], grouping) if grouping != "split" else None
    return _ClassifierData(measured, labels, groups)


def _reference_encoder(ds: Dataset, config: EvaluationConfig, timings: dict[str, float]) -> tuple[DomainEncoder | None, str]:
    if config.encoder_dir and Path(config.encoder_dir, "encoder.safetensors").is_file():
        encoder = DomainEncoder.load(config.encoder_dir)
        return encoder, f"loaded from {config.encoder_dir}"
    train_rows = _train_rows(ds)
    labels = _labels(ds.cells.iloc[train_rows], config.label_column) if len(train_rows) else None
    if labels is None:
        note = f"no domain encoder: the train split lacks ≥ 2 classes in {config.label_column}"
        logger.warning(note)
        return None, note
    with Timer(timings, "train_encoder"):
        trained = train_domain_encoder(ds.images[train_rows], labels, config=config.encoder, progress=config.progress)
    last = trained.history[-1] if trained.history else {}
    note = (
        f"trained here on {min(len(train_rows), config.encoder.max_train_cells)} training crops "
        f"({config.label_column} classifier, final train accuracy {last.get('train_accuracy', float('nan')):.3f})"
    )
    if config.encoder_dir:
        trained.encoder.save(config.encoder_dir, extra={"dataset": str(ds.path), "history": trained.history})
        note += f", saved to {config.encoder_dir}"
    return trained.encoder, note


def _reference_inception(images: np.ndarray, config: EvaluationConfig, timings: dict[str, float]
                         ) -> tuple[InceptionExtractor | None, str, np.ndarray | None, np.ndarray | None]:
    """(extractor, note, pool features of the real cells, their positions) — or a note saying why not."""
    try:
        with Timer(timings, "inception_load"):
            inception = InceptionExtractor.load(config.inception)
    except InceptionUnavailable as err:
        logger.warning("FID/KID skipped: %s", err)
        return None, str(err), None, None
    subset = sample_rows(np.arange(len(images)), config.inception_max_cells, config.seed + 2)
    with Timer(timings, "inception_real"):
        features = inception.features(images[subset], progress=config.progress, desc="inception (real)")
    return inception, f"{inception.path} ({inception.identity})", features, subset


def build_reference(dataset: Dataset | str | os.PathLike, *, config: EvaluationConfig | None = None) -> RealReference:
    """Measure, embed and (optionally) Inception-encode the real cells once."""
    config = config or EvaluationConfig()
    ds = _as_dataset(dataset)
    timings: dict[str, float] = {}
    heldout, ok, rows = _heldout_rows(ds, config)
    cells = ds.cells.iloc[rows].reset_index(drop=True)
    images = np.asarray(ds.images[rows])
    labels = _labels(cells, config.label_column)
    with Timer(timings, "measure_real"):
        measured = _real_profiles(ds, rows, config, "real held-out")

    grouping = resolve_moa_grouping(ds.cells, heldout, _train_rows(ds), config.moa_groups)
    train = _classifier_training(ds, config, grouping, labels is not None, timings)
    groups = group_keys(cells, grouping) if labels is not None and grouping != "split" else None

    encoder, encoder_note = _reference_encoder(ds, config, timings)
    embedding = None
    if encoder is not None:
        with Timer(timings, "embed_real"):
            embedding = encoder.embed(images, batch_size=config.batch_size)
    inception, inception_note, inception_features, inception_subset = _reference_inception(images, config, timings)

    return RealReference(
        dataset_path=str(ds.path), split=config.split, rows=rows, cells=cells, images=images,
        measured=measured, n_heldout=int(len(heldout)), n_excluded=int((~ok).sum()), labels=labels,
        train_measured=train.measured, train_labels=train.labels, encoder=encoder, encoder_note=encoder_note,
        encoder_embedding=embedding, inception=inception, inception_note=inception_note,
        inception_features=inception_features, inception_subset=inception_subset, timings=timings,
        moa_grouping=grouping, groups=groups, train_groups=train.groups,
    )

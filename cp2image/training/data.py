"""Training data: memory-mapped crops + standardised features, sampled by step.

- `prepare_features` picks the model's features, drops unusable ones/rows and fits
  the mean/scale stored in the model config (on the training rows only).
- `StepSampler` yields, for every optimiser step, the index array of this process's
  share of the global batch. Batches are a pure function of (seed, step), so a run
  resumed at step k sees exactly the batches an uninterrupted run would, and a
  2-process run sees the same global batches as a 1-process run. With `weights`
  (`class_weights`, config `balance_by`) each step's batch is drawn with replacement
  in proportion to them, so rare classes (MoAs) are seen as often as common ones.
- `CellBatches` is a map-style Dataset whose items are whole batches; it opens the
  image memmap lazily, once per worker process (memmaps are never pickled).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler

from cp2image.data.columns import COMPOUND, MOA, PLATE, SPLIT
from cp2image.data.dataset import Dataset, DatasetError

log = logging.getLogger(__name__)


@dataclass
class FeatureTable:
    """Rows usable for training, their standardised features and the statistics used."""

    rows: np.ndarray  # dataset row indices (int64)
    names: list[str]  # features in model order
    mean: np.ndarray  # (p,) float64, raw units
    scale: np.ndarray  # (p,) float64, > 0
    standardised: np.ndarray  # (len(rows), p) float32


def training_rows(dataset: Dataset, split: str) -> np.ndarray:
    """Row indices of `split` ("all" → every row); a dataset without splits uses all rows."""
    if split == "all":
        return np.arange(len(dataset))
    if SPLIT not in dataset.cells.columns:
        log.warning("%s has no Metadata_Split column; training on all %d rows", dataset.path, len(dataset))
        return np.arange(len(dataset))
    rows = dataset.split_indices(split)
    if len(rows) == 0:
        found = sorted(dataset.cells[SPLIT].dropna().unique().tolist())
        raise DatasetError(f"{dataset.path}: no rows in split {split!r}; splits present: {found}")
    return rows


def prepare_features(dataset: Dataset, rows: np.ndarray, *, features: list[str] | None = None,
                     max_nonfinite_fraction: float = 0.01) -> FeatureTable:
    """Select features, drop mostly-missing ones and incomplete rows, fit mean/scale.

    Features non-finite in more than `max_nonfinite_fraction` of the rows are dropped
    (unless named explicitly, which then raises); remaining rows with any non-finite
    value (e.g. failed segmentation) are dropped. Scale is the standard deviation, or
    1 for a constant feature so it standardises to 0 instead of dividing by zero.
    """
    names = list(features) if features is not None else list(dataset.feature_names)
    missing = [f for f in names if f not in dataset.cells.columns]
    if missing:
        raise DatasetError(f"{dataset.path}: feature column(s) not in cells.parquet: {missing[:10]}")
    if not names:
        raise DatasetError(f"{dataset.path}: no feature columns (Cells_/Nuclei_/Cytoplasm_) to train on")
    values = dataset.cells[names].iloc[rows].to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    bad_fraction = 1.0 - finite.mean(axis=0)
    drop = bad_fraction > max_nonfinite_fraction
    if drop.any():
        dropped = [n for n, d in zip(names, drop) if d]
        if features is not None:
            raise DatasetError(
                f"{dataset.path}: requested feature(s) {dropped[:5]} are NaN/inf in more than "
                f"{max_nonfinite_fraction:.0%} of training rows"
            )
        log.warning("dropping %d feature(s) non-finite in >%.0f%% of rows, e.g. %s",
                    len(dropped), 100 * max_nonfinite_fraction, dropped[:5])
        keep = ~drop
        names = [n for n, k in zip(names, keep) if k]
        values, finite = values[:, keep], finite[:, keep]
    complete = finite.all(axis=1)
    if not complete.all():
        log.info("dropping %d of %d rows with NaN/inf features", int((~complete).sum()), len(rows))
    rows, values = np.asarray(rows)[complete], values[complete]
    if len(rows) == 0:
        raise DatasetError(f"{dataset.path}: no training row has all {len(names)} features finite")
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    scale = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    standardised = ((values - mean) / scale).astype(np.float32)
    return FeatureTable(rows=rows.astype(np.int64), names=names, mean=mean, scale=scale,
                        standardised=standardised)


def write_feature_matrix(path: Path, matrix: np.ndarray) -> Path:
    """Save standardised features as .npy (atomically) so workers can memory-map them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, np.ascontiguousarray(matrix, dtype=np.float32))
    os.replace(tmp, path)
    return path


# `balance_by` shorthands → metadata column; any other value names a column of cells.parquet.
BALANCE_COLUMNS: dict[str, str] = {"moa": MOA, "compound": COMPOUND}


def class_keys(labels: pd.Series | np.ndarray) -> pd.Series:
    """The class of each row as text, missing labels forming one class ("<missing>") of their own."""
    return pd.Series(np.asarray(labels, dtype=object)).fillna("<missing>").astype(str)


def class_weights(labels: pd.Series | np.ndarray, *, power: float = 1.0) -> np.ndarray:
    """Per-row sampling weights ∝ count(class)^-power, summing to 1.

    power 1 draws every class equally often (a class of 9 cells as often as one of 2,500);
    power 0.5 gives each class a share ∝ √count; power 0 is plain uniform sampling.
    Missing labels form one class of their own, so no row is dropped.
    """
    if power < 0:
        raise ValueError(f"balance power must be ≥ 0, got {power}")
    keys = class_keys(labels)
    counts = keys.map(keys.value_counts()).to_numpy(dtype=np.float64)
    weights = counts ** -float(power)
    return weights / weights.sum()


def balancing_labels(cells: pd.DataFrame, rows: np.ndarray, balance_by: str) -> pd.Series:
    """The labels `balance_by` ("moa", "compound" or a column name) gives the training rows."""
    column = BALANCE_COLUMNS.get(balance_by.lower(), balance_by)
    if column not in cells.columns:
        raise DatasetError(f"balance_by={balance_by!r}: the dataset has no column {column!r}")
    return cells[column].iloc[np.asarray(rows)].reset_index(drop=True)


class StepSampler(Sampler[np.ndarray]):
    """Per-step index arrays into the training table for one DDP rank.

    Step t uses global batch perm_e[j·B:(j+1)·B] of epoch e = t // steps_per_epoch
    (perm_e = a permutation seeded by (seed, stream, e)), and rank r takes every
    world-th element from position r. `stream` gives an independent sequence (the
    discriminator's real batch must be independent of the generator's batch).
    With `weights` (n probabilities, e.g. `class_weights`), step t's global batch is
    instead drawn with replacement from a generator seeded by (seed, stream, t):
    still a pure function of the step, so resuming and sharding behave the same.
    """

    def __init__(self, n: int, *, global_batch: int, start_step: int, end_step: int, seed: int,
                 stream: int = 0, rank: int = 0, world_size: int = 1,
                 weights: np.ndarray | None = None) -> None:
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by {world_size} processes")
        if n < global_batch:
            raise DatasetError(f"only {n} usable training cells, fewer than the batch size {global_batch}")
        self.n, self.batch, self.start, self.end = n, global_batch, start_step, end_step
        self.seed, self.stream, self.rank, self.world = seed, stream, rank, world_size
        self.steps_per_epoch = n // global_batch
        self.weights: torch.Tensor | None = None
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"weights must be {n} finite, non-negative values with a positive sum")
            self.weights = torch.from_numpy(w / w.sum())

    def indices(self, step: int) -> np.ndarray:
        if self.weights is not None:
            generator = torch.Generator().manual_seed(
                int(self.seed) * 1_000_003 + self.stream * 7919 + 104_729 * (int(step) + 1))
            batch = torch.multinomial(self.weights, self.batch, replacement=True, generator=generator).numpy()
            return np.sort(batch[self.rank::self.world])
        epoch, position = divmod(step, self.steps_per_epoch)
        generator = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + self.stream * 7919 + epoch)
        perm = torch.randperm(self.n, generator=generator).numpy()
        batch = perm[position * self.batch:(position + 1) * self.batch]
        return np.sort(batch[self.rank::self.world])

    def __iter__(self) -> Iterator[np.ndarray]:
        for step in range(self.start, self.end):
            yield self.indices(step)

    def __len__(self) -> int:
        return max(0, self.end - self.start)


class PairedSampler(Sampler[tuple[np.ndarray, np.ndarray]]):
    """(generator batch, independent real batch) per step."""

    def __init__(self, main: StepSampler, real: StepSampler) -> None:
        self.main, self.real = main, real

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return zip(iter(self.main), iter(self.real))

    def __len__(self) -> int:
        return len(self.main)


class CellBatches(TorchDataset):
    """Item = (generator batch indices, real batch indices) → dict of tensors.

    Images stay uint8 until they reach the device (4× less to copy); `features` are
    the standardised rows of the feature matrix.
    """

    def __init__(self, images_path: Path, rows: np.ndarray, features_path: Path) -> None:
        self.images_path, self.features_path = Path(images_path), Path(features_path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self._images: np.ndarray | None = None
        self._features: np.ndarray | None = None

    def _open(self) -> None:
        # Opened lazily in whichever process reads, so each DataLoader worker has its own memmap.
        self._images = np.load(self.images_path, mmap_mode="r", allow_pickle=False)
        self._features = np.load(self.features_path, mmap_mode="r", allow_pickle=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = state["_features"] = None  # never pickle a memmap into a worker
        return state

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: tuple[np.ndarray, np.ndarray]) -> dict[str, torch.Tensor]:
        if self._images is None:
            self._open()
        main, real = item
        return {
            "images": torch.from_numpy(np.ascontiguousarray(self._images[self.rows[main]])),  # (b, 3, H, W) uint8
            "features": torch.from_numpy(np.ascontiguousarray(self._features[main])),  # (b, p) float32
            "real": torch.from_numpy(np.ascontiguousarray(self._images[self.rows[real]])),  # (b, 3, H, W) uint8
        }


def images_file(dataset: Dataset) -> Path:
    """The .npy file behind a dataset's image memmap (packed datasets are unpacked to the cache)."""
    filename = getattr(dataset.images, "filename", None)
    if filename is None:
        raise DatasetError(f"{dataset.path}: images are not memory-mapped; open the dataset with open_dataset")
    return Path(filename)


def grid_rows(table: FeatureTable, n: int, *, seed: int) -> np.ndarray:
    """Positions (into the training table) of the fixed cells shown in every image grid."""
    rng = np.random.default_rng(seed + 12345)
    return np.sort(rng.choice(len(table.rows), size=min(n, len(table.rows)), replace=False))


def summarise_split(cells: pd.DataFrame, rows: np.ndarray) -> dict[str, int]:
    """Counts for provenance: cells, plates, compounds in the training rows."""
    sub = cells.iloc[rows]
    out = {"cells": int(len(rows))}
    for col, key in ((PLATE, "plates"), (COMPOUND, "compounds")):
        if col in sub.columns:
            out[key] = int(sub[col].nunique())
    return out


def validation_batch(dataset: Dataset, table: FeatureTable, *, seed: int, limit: int = 256) -> dict | None:
    """Up to `limit` cells of the "val" split (complete features, standardised with the
    training statistics) for a held-out MSE at every grid step; None without a val split."""
    if SPLIT not in dataset.cells.columns:
        return None
    rows = dataset.split_indices("val")
    values = dataset.cells[table.names].iloc[rows].to_numpy(dtype=np.float64)
    keep = np.isfinite(values).all(axis=1)
    rows, values = rows[keep], values[keep]
    if len(rows) == 0:
        return None
    pick = np.sort(np.random.default_rng(seed).permutation(len(rows))[:limit])
    z = ((values[pick] - table.mean) / table.scale).astype(np.float32)
    images = torch.from_numpy(np.asarray(dataset.images[rows[pick]]))
    return {"images": images, "real": images, "features": torch.from_numpy(z)}

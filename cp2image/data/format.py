"""The dataset format itself: file names, the opened `Dataset`, and the checks every writer runs.

Kept apart from reading (`dataset.py`) and streaming (`writer.py`) so that both
import the same rules without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cp2image.channels import CHANNELS, CROP_SIZE, PIXEL_SIZE_UM
from cp2image.data.columns import feature_columns

FORMAT_VERSION = 1
IMAGES_FILE = "images.npy"
PACKED_IMAGES_FILE = "images.npz"
CELLS_FILE = "cells.parquet"
META_FILE = "dataset.json"
REQUIRED_METADATA: tuple[str, ...] = (
    "Metadata_Plate",
    "Metadata_Well",
    "Metadata_Compound",
    "Metadata_Concentration",
)


CHECKSUMS_KEY = "checksums"  # dataset.json: {"cells.parquet": sha256}; parquet has no whole-file checksum


class DatasetError(ValueError):
    """A dataset directory or its contents is invalid; the message names what and where."""


@dataclass
class Dataset:
    """An opened dataset: memory-mapped images, the per-cell table and its metadata."""

    path: Path
    images: np.ndarray  # (N, 3, H, W) uint8, usually a read-only memmap
    cells: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def feature_names(self) -> list[str]:
        """Features in model order: `meta["features"]` when stored, else by prefix."""
        stored = self.meta.get("features")
        return list(stored) if stored else feature_columns(self.cells)

    @property
    def channels(self) -> list[str]:
        return list(self.meta.get("channels", CHANNELS))

    def split_indices(self, split: str) -> np.ndarray:
        """Row indices of one split ("train", "val" or "test")."""
        if "Metadata_Split" not in self.cells.columns:
            raise DatasetError(f"{self.path}: no Metadata_Split column; assign splits first")
        mask = self.cells["Metadata_Split"].to_numpy() == split
        return np.flatnonzero(mask)

    def subset(self, indices: np.ndarray) -> "Dataset":
        """An in-memory view of some rows (images are copied out of the memmap)."""
        indices = np.asarray(indices)
        return Dataset(
            path=self.path,
            images=np.asarray(self.images[indices]),
            cells=self.cells.iloc[indices].reset_index(drop=True),
            meta=dict(self.meta),
        )


# ----------------------------------------------------------------------------- validation


def validate_images(images: np.ndarray, *, where: str = "dataset") -> None:
    """dtype uint8, shape (N, 3, S, S); raise DatasetError naming the problem."""
    if images.dtype != np.uint8:
        raise DatasetError(f"{where}: {IMAGES_FILE} has dtype {images.dtype}, expected uint8")
    if images.ndim != 4 or images.shape[1] != len(CHANNELS):
        raise DatasetError(
            f"{where}: {IMAGES_FILE} has shape {images.shape}, expected (N, {len(CHANNELS)}, H, W)"
        )
    if images.shape[2] != images.shape[3]:
        raise DatasetError(f"{where}: crops must be square, got {images.shape[2]}×{images.shape[3]}")


def validate_table(columns: list[str], n_rows: int, n_images: int, *, where: str = "dataset") -> None:
    """Row count matches the images, required metadata present, no duplicated column."""
    if n_rows != n_images:
        raise DatasetError(
            f"{where}: {CELLS_FILE} has {n_rows} rows but {IMAGES_FILE} has {n_images} images"
        )
    missing = [c for c in REQUIRED_METADATA if c not in columns]
    if missing:
        raise DatasetError(f"{where}: {CELLS_FILE} lacks required metadata column(s) {missing}")
    dup = sorted({c for c in columns if list(columns).count(c) > 1})
    if dup:
        raise DatasetError(f"{where}: {CELLS_FILE} has duplicated column(s) {dup}")


def validate_arrays(images: np.ndarray, cells: pd.DataFrame, *, where: str = "dataset") -> None:
    """Check the image array and cell table agree; raise DatasetError naming the problem."""
    validate_images(images, where=where)
    validate_table(list(cells.columns), len(cells), images.shape[0], where=where)


def default_meta(images: np.ndarray, cells: pd.DataFrame) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "channels": list(CHANNELS),
        "crop_size": int(images.shape[-1]) if images.ndim == 4 else CROP_SIZE,
        "pixel_size_um": PIXEL_SIZE_UM,
        "features": feature_columns(cells),
        "provenance": {},
    }

"""Streaming an ingest into a dataset, and resuming it after a kill.

Every ingest path writes its output in units: a batch of crops (`ingest crops`), a
chunk of the objects table (`ingest fields --objects`) or a field (`ingest fields`
finding nuclei). All of them go through one `IngestStream`, a resumable
`DatasetWriter` that journals each unit once its crops and rows are on disk,
together with that unit's share of the summary counts.

Running the same command again (same input files, same options: the resume key)
skips the journaled units, reports the counts of the whole dataset and ends with
exactly the dataset an uninterrupted run writes. Units must therefore be cut the
same way on every run (fixed batch or chunk size, inputs in a fixed order).
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cp2image.checksums import file_digest
from cp2image.data.columns import FAILED_COLUMN, SPLIT
from cp2image.data.format import DatasetError
from cp2image.data.ingest.splits import split_counts
from cp2image.data.ingest.summary import IngestSummary
from cp2image.data.writer import DatasetWriter

log = logging.getLogger(__name__)

IGNORED_OPTIONS: tuple[str, ...] = ("progress", "overwrite", "restart", "n_jobs")  # do not change the dataset


def resume_key(files: dict[str, str | Path | Iterable[str | Path] | None], options: dict[str, Any]) -> str:
    """SHA-256 of everything that determines the dataset: the input files' bytes, the options, the version.

    `files` maps a role ("image_table", "objects", ...) to a path, a list of paths or
    None. Options named in `IGNORED_OPTIONS` (progress bar, overwrite, workers) are left
    out: a resumed run may use another number of workers.
    """
    from cp2image import __version__

    def digest(value):
        if value is None:
            return None
        if isinstance(value, (str, Path)):
            return file_digest(Path(value))
        return [file_digest(Path(v)) for v in value]

    text = json.dumps({"files": {role: digest(v) for role, v in files.items()},
                       "options": {k: v for k, v in options.items() if k not in IGNORED_OPTIONS},
                       "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def partial_dir(out: str | Path) -> Path:
    """Where an unfinished resumable write of `out` lives (beside it, hidden)."""
    out = Path(out)
    return out.parent / f".{out.name}.partial"


class IngestStream:
    """One ingest run's resumable writer and summary.

    `done` holds the units an earlier, killed run already wrote (skip them); their
    counts are already in `summary`. `write(unit, images, cells)` appends one unit and
    journals it with the counts added to `summary` since the previous write, plus
    `extra` (JSON) that the caller reads back through `extras(key)`.
    Use as a context manager: the dataset appears when the block ends without error.
    After bad input (a `DatasetError` such as `IngestError`) nothing is left behind: the
    same input would fail again. After any other error (interrupt, crash) the
    journaled work stays for the next run.
    """

    def __init__(self, out: str | Path, capacity: int, *, crop_size: int, meta: dict, key: str,
                 summary: IngestSummary, units: int, unit_name: str = "units", overwrite: bool = False,
                 restart: bool = False) -> None:
        if restart:
            shutil.rmtree(partial_dir(out), ignore_errors=True)
        self.writer = DatasetWriter(out, max(int(capacity), 1), crop_size=crop_size, meta=meta,
                                    overwrite=overwrite, resume_key=key)
        self.summary = summary
        self.done = set(self.writer.done)
        for note in self.writer.notes:
            summary.add_counts(note)
        self._before = summary.counts()
        self._announce = f"resuming {out}: {len(self.done)} of {units} {unit_name} already written"

    def write(self, unit: str, images: np.ndarray, cells: pd.DataFrame, *, extra: dict | None = None) -> None:
        """Append one unit (possibly empty) and journal it with its counts."""
        self.summary.n_written += len(cells)
        if len(cells) and SPLIT in cells.columns:
            for name, count in split_counts(cells[SPLIT]).items():
                self.summary.splits[name] = self.summary.splits.get(name, 0) + count
        note = {**self.summary.since(self._before), **(extra or {})}
        self.writer.append(images, cells, unit=unit, note=note)
        self._before = self.summary.counts()

    def extras(self, key: str) -> list:
        """Values of `extra[key]` of every unit written so far, earlier runs included."""
        return [note[key] for note in self.writer.notes if key in note]

    def columns(self) -> list[str]:
        """The cell table's columns (of the first unit with rows); [] before any row is written."""
        return self.writer.columns()

    def abort(self) -> None:
        """Discard everything, journal included (nothing worth resuming)."""
        self.writer.abort()

    def __enter__(self) -> "IngestStream":
        if self.done:
            log.warning(self._announce)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and issubclass(exc_type, DatasetError):
            self.writer.abort()
            return
        self.writer.__exit__(exc_type, exc, tb)


def measure_and_filter(
    images: np.ndarray, cells: pd.DataFrame, measure: Callable[..., pd.DataFrame], *, n_jobs: int | None,
    drop_failed: bool, summary: IngestSummary,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Append measured features to `cells`; count (and optionally drop) failed segmentations."""
    features = measure(images, n_jobs=n_jobs).reset_index(drop=True)
    failed = features[FAILED_COLUMN].to_numpy(dtype=bool)
    summary.n_measured += len(failed)
    summary.n_segmentation_failed = (summary.n_segmentation_failed or 0) + int(failed.sum())
    cells = pd.concat([cells.reset_index(drop=True), features], axis=1)
    if drop_failed:
        # NaN features on a segmented cell (e.g. a texture of a tiny object) are as unusable for training
        bad = failed | features.drop(columns=[FAILED_COLUMN]).isna().any(axis=1).to_numpy()
        if bad.any():
            summary.n_dropped_failed += int(bad.sum())
            return images[~bad], cells[~bad].reset_index(drop=True)
    return images, cells

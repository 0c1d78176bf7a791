"""`DatasetWriter`: stream batches of crops and rows into a dataset, optionally resumable.

Memory stays bounded by one batch whatever the number of cells; with a resume key
a killed run continues after its last journaled batch (see the class docstring).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cp2image.channels import CHANNELS, CROP_SIZE
from cp2image.checksums import file_digest
from cp2image.data.files import atomic_text, commit_dir, fresh_temp_dir, shrink_npy, write_meta
from cp2image.data.format import (
    CELLS_FILE,
    CHECKSUMS_KEY,
    IMAGES_FILE,
    META_FILE,
    DatasetError,
    default_meta,
    validate_arrays,
    validate_images,
    validate_table,
)

log = logging.getLogger(__name__)

RESUME_STATE = "resume.json"  # in a resumable writer's work dir: what it is building
JOURNAL = "journal.jsonl"  # one line per appended batch, written after its images and rows are on disk
PARTS = "parts"  # one parquet file per appended batch, merged into cells.parquet (one row group each) on close


class DatasetWriter:
    """Stream batches of images and rows into a dataset without holding them in memory.

    Use as a context manager: `append` batches of images and rows, and the dataset
    appears at `path` only when the block exits without error. Images are written
    straight into `images.npy` at their row offset (plain file writes, so no page of
    the growing file is mapped into this process); each batch's rows go to their own
    parquet file, and `close` merges those into `cells.parquet`, one row group per
    batch, reading one batch at a time. Memory therefore does not grow with the
    number of cells. The image count must be known up front (it sizes the file);
    `close` trims it to what was written.

    Resuming: with `resume_key` (a string that changes whenever the output would),
    the work goes to a fixed hidden folder next to `path` instead of a random one,
    every batch is recorded in a journal with its `unit` name once its images and
    rows are on disk, and a later writer with the same key picks up after the last
    recorded batch: `done` lists the units already written. A writer that fails
    keeps that folder for the next run; a different key discards it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        capacity: int,
        *,
        crop_size: int = CROP_SIZE,
        meta: dict[str, Any] | None = None,
        overwrite: bool = False,
        resume_key: str | None = None,
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; pass overwrite=True to replace it")
        self.capacity = int(capacity)
        self.crop_size = int(crop_size)
        self.overwrite = overwrite
        self.meta = dict(meta or {})
        self.resume_key = resume_key
        self.count = 0
        self.done: list[str] = []  # units recorded in the journal, in write order
        self.notes: list[dict] = []  # the `note` given with each journaled unit (e.g. its counts), same order
        self._parts = 0
        self._row_bytes = len(CHANNELS) * self.crop_size * self.crop_size
        if resume_key is None:
            self._tmp = fresh_temp_dir(self.path)
            self._create_images()
        else:
            self._tmp = self.path.parent / f".{self.path.name}.partial"
            if not self._resume():
                self._start_resumable()
        (self._tmp / PARTS).mkdir(exist_ok=True)
        self._image_file = open(self._tmp / IMAGES_FILE, "r+b")
        self._journal = open(self._tmp / JOURNAL, "a") if resume_key is not None else None

    # ------------------------------------------------------------ set-up / resume
    def _create_images(self) -> None:
        header = np.lib.format.open_memmap(
            self._tmp / IMAGES_FILE, mode="w+", dtype=np.uint8,
            shape=(self.capacity, len(CHANNELS), self.crop_size, self.crop_size),
        )  # writes the .npy header and sizes the (sparse) file; rows are written with pwrite
        self._offset = header.offset
        del header

    def _state(self) -> dict[str, Any]:
        return {"key": self.resume_key, "capacity": self.capacity, "crop_size": self.crop_size}

    def _start_resumable(self) -> None:
        if self._tmp.exists():
            shutil.rmtree(self._tmp)
        self._tmp.mkdir(parents=True)
        self._tmp.chmod(0o755)
        self._create_images()
        (self._tmp / JOURNAL).write_text("")
        atomic_text(self._tmp / RESUME_STATE, json.dumps(self._state()))

    def _resume(self) -> bool:
        """Pick up a matching work dir; False (after a log line) when there is none to resume."""
        state_path = self._tmp / RESUME_STATE
        try:
            state = json.loads(state_path.read_text())
            images = np.load(self._tmp / IMAGES_FILE, mmap_mode="r")
        except (OSError, ValueError):
            return False
        if state != self._state() or images.shape != (self.capacity, len(CHANNELS), self.crop_size, self.crop_size):
            log.warning("%s: unfinished work from a different configuration; starting again", self._tmp)
            return False
        self._offset = images.offset
        del images
        kept: list[str] = []
        count = 0
        for line in (self._tmp / JOURNAL).read_text().splitlines():
            try:  # a line cut by a kill ends the journal
                entry = json.loads(line)
                part, start, rows = entry.get("part"), int(entry["start"]), int(entry["rows"])
            except (ValueError, KeyError, TypeError):
                break
            if start != count or (part is not None and not (self._tmp / PARTS / part).exists()):
                break
            kept.append(line)
            self.done.append(str(entry["unit"]))
            self.notes.append(dict(entry.get("note") or {}))
            count = start + rows
            self._parts += part is not None
        self.count = count
        expected = {f"{i:06d}.parquet" for i in range(self._parts)}
        for stray in (self._tmp / PARTS).glob("*"):  # written after the last journal line: redone
            if stray.name not in expected:
                stray.unlink()
        atomic_text(self._tmp / JOURNAL, "".join(f"{line}\n" for line in kept))
        log.info("%s: resuming after %d batch(es), %d rows", self.path, len(self.done), self.count)
        return True

    # ------------------------------------------------------------ writing
    def append(self, images: np.ndarray, cells: pd.DataFrame, *, unit: str | None = None,
               note: dict | None = None) -> None:
        """Write one batch: images at the next rows of `images.npy`, rows as one parquet part.

        `unit` names the batch in the journal (e.g. a well or field id) so a resumed
        run can skip it; it is required when the writer is resumable. `note` (JSON)
        is journaled with it and comes back in `notes` on resume (e.g. the batch's counts).
        """
        if len(images) != len(cells):
            raise DatasetError(f"append: {len(images)} images but {len(cells)} rows")
        if self.resume_key is not None and unit is None:
            raise DatasetError("append: a resumable writer needs unit= naming the batch (e.g. the well)")
        end = self.count + len(images)
        if end > self.capacity:
            raise DatasetError(f"append: capacity {self.capacity} exceeded ({end} images)")
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if images.shape[1:] != (len(CHANNELS), self.crop_size, self.crop_size):
            raise DatasetError(f"append: images have shape {images.shape[1:]}, expected "
                               f"({len(CHANNELS)}, {self.crop_size}, {self.crop_size}) per crop")
        part = None
        if len(cells):
            os.pwrite(self._image_file.fileno(), images.tobytes(), self._offset + self.count * self._row_bytes)
            part = f"{self._parts:06d}.parquet"
            table = pa.Table.from_pandas(cells.reset_index(drop=True), preserve_index=False)
            if self._parts:
                first = pq.read_schema(self._tmp / PARTS / f"{0:06d}.parquet")
                if first.names != table.schema.names:
                    missing = [c for c in first.names if c not in table.schema.names]
                    extra = [c for c in table.schema.names if c not in first.names]
                    raise DatasetError(f"append: rows have different columns from the first batch "
                                       f"(missing {missing[:5]}, extra {extra[:5]}, or another order)")
            tmp = self._tmp / PARTS / f".{part}.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, self._tmp / PARTS / part)
            self._parts += 1
        if self._journal is not None:
            os.fsync(self._image_file.fileno())  # the journal line must not survive a crash its data did not
            entry = {"unit": unit, "part": part, "start": self.count, "rows": len(cells)}
            self._journal.write(json.dumps({**entry, "note": note} if note else entry) + "\n")
            self._journal.flush()
            os.fsync(self._journal.fileno())
        if unit is not None:
            self.done.append(str(unit))
            self.notes.append(dict(note or {}))
        self.count = end

    def _part_paths(self) -> list[Path]:
        return [self._tmp / PARTS / f"{i:06d}.parquet" for i in range(self._parts)]

    def columns(self) -> list[str]:
        """Columns of the rows written so far ([] before the first batch with rows)."""
        parts = self._part_paths()
        return list(pq.read_schema(parts[0]).names) if parts else []

    def _merge_parts(self, target: Path) -> tuple[list[str], int]:
        """Concatenate the parts into one parquet file (one row group per part); returns columns, rows."""
        parts = self._part_paths()
        schemas = [pq.read_schema(p) for p in parts]
        schema = schemas[0]
        if any(not s.equals(schema, check_metadata=False) for s in schemas[1:]):
            schema = _common_schema(parts, schemas)
        rows = 0
        with pq.ParquetWriter(target, schema) as out:
            for p in parts:
                table = pq.read_table(p)
                out.write_table(table if table.schema.equals(schema) else table.cast(schema))
                rows += table.num_rows
        return list(schema.names), rows

    def close(self) -> Path:
        """Finish the dataset and move it into place."""
        self._close_files()
        if self.count < self.capacity:
            shrink_npy(self._tmp / IMAGES_FILE, self.count)
        images = np.load(self._tmp / IMAGES_FILE, mmap_mode="r")
        if self._parts:
            columns, rows = self._merge_parts(self._tmp / CELLS_FILE)
            validate_images(images, where=str(self.path))
            validate_table(columns, rows, images.shape[0], where=str(self.path))
            header = pd.DataFrame(columns=columns)
        else:
            header = pd.DataFrame()
            validate_arrays(images, header, where=str(self.path))
            header.to_parquet(self._tmp / CELLS_FILE, index=False)
        meta = default_meta(images, header)
        meta.update(self.meta)
        del images
        meta[CHECKSUMS_KEY] = {CELLS_FILE: file_digest(self._tmp / CELLS_FILE)}
        for leftover in (JOURNAL, RESUME_STATE):
            (self._tmp / leftover).unlink(missing_ok=True)
        shutil.rmtree(self._tmp / PARTS, ignore_errors=True)
        write_meta(self._tmp / META_FILE, meta)
        commit_dir(self._tmp, self.path, overwrite=self.overwrite)
        return self.path

    def _close_files(self) -> None:
        for name in ("_image_file", "_journal"):
            fh = self.__dict__.pop(name, None)
            if fh is not None:
                fh.close()

    def abort(self) -> None:
        """Discard everything written so far (a resumable writer's work dir too)."""
        self._close_files()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self.resume_key is not None:
            self._close_files()  # keep the journaled work: the same command resumes it
            log.info("%s: %d rows kept in %s for a resumed run", self.path, self.count, self._tmp)
        else:
            self.abort()


def _all_null(path: Path) -> set[str]:
    """Columns of a parquet part that hold no value at all (from its statistics)."""
    meta = pq.ParquetFile(path).metadata
    out = set()
    for c in range(meta.num_columns):
        nulls = [meta.row_group(g).column(c).statistics for g in range(meta.num_row_groups)]
        if all(st is not None and st.has_null_count for st in nulls) and sum(st.null_count for st in nulls) == meta.num_rows:
            out.add(meta.schema.column(c).name)
    return out


def _common_schema(parts: list[Path], schemas: list[pa.Schema]) -> pa.Schema:
    """One schema for parts whose column types differ, as `pd.concat` of the batches would give.

    Usual cause: a column that is all missing in one batch (pandas makes it float
    NaN or object None) and text or numbers in another. Each column takes its type
    from the first part where it holds a value; remaining differences (int vs float)
    are widened by pyarrow. The pandas notes of the first part that already has
    every chosen type are kept, else dropped (pyarrow's defaults then apply).
    """
    empty = [_all_null(p) for p in parts]
    fields = []
    for i, name in enumerate(schemas[0].names):
        typed = [s.field(name) for s, e in zip(schemas, empty) if name not in e] or [schemas[0].field(name)]
        try:
            merged = pa.unify_schemas([pa.schema([f]) for f in typed], promote_options="permissive").field(0)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise DatasetError(f"append: column {name!r} has incompatible types across batches ({err})") from err
        fields.append(merged)
    schema = pa.schema(fields)
    for s in schemas:
        if all(s.field(f.name).type == f.type for f in fields):
            return schema.with_metadata(s.metadata)
    return schema

"""The dataset directory every stage reads and writes.

A dataset is a directory holding
- `images.npy`   uint8 (N, 3, H, W), channel order DNA, β-tubulin, F-actin, opened
                 memory-mapped so that datasets larger than RAM work;
- `cells.parquet` one row per image (row i ↔ image i): `Metadata_*` columns and
                 CellProfiler-named feature columns (`Nuclei_AreaShape_Area`, ...);
- `dataset.json` channel names, crop size, pixel size, feature list, normalisation
                 statistics and provenance.

A bundled dataset may ship `images.npz` (compressed) instead of `images.npy`; it is
unpacked once into the user cache and memory-mapped from there.

Writes are atomic: everything goes to a hidden temporary directory next to the
target which is renamed into place only when complete, so an interrupted write
never leaves a directory that opens as valid.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
import logging
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cp2image.checksums import file_digest
from cp2image.channels import CHANNELS, CROP_SIZE, PIXEL_SIZE_UM
from cp2image.data.columns import feature_columns, metadata_columns

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


log = logging.getLogger(__name__)

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


def _default_meta(images: np.ndarray, cells: pd.DataFrame) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "channels": list(CHANNELS),
        "crop_size": int(images.shape[-1]) if images.ndim == 4 else CROP_SIZE,
        "pixel_size_um": PIXEL_SIZE_UM,
        "features": feature_columns(cells),
        "normalisation": None,
        "provenance": {},
    }


# ----------------------------------------------------------------------------- writing


def _fresh_temp_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes 0700; a finished dataset should be readable like any folder
    return tmp


def _shrink_npy(path: Path, rows: int) -> None:
    """Cut an .npy file to its first `rows` rows in place (header rewrite + truncate).

    The header is padded to a multiple of 64 bytes, so a smaller leading dimension
    almost always fits the same header length; when it does not, fall back to a copy.
    """
    array = np.load(path, mmap_mode="r")
    offset, shape, dtype = array.offset, array.shape, array.dtype
    del array
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                 "shape": (rows, *shape[1:])}
    )
    new_size = offset + rows * int(np.prod(shape[1:])) * dtype.itemsize
    if len(header.getvalue()) == offset:
        with open(path, "r+b") as fh:
            fh.write(header.getvalue())
            fh.truncate(new_size)
        return
    full = np.load(path, mmap_mode="r")
    trimmed = path.with_name(f".{path.name}.trim.npy")
    out = np.lib.format.open_memmap(trimmed, mode="w+", dtype=dtype, shape=(rows, *shape[1:]))
    for start in range(0, rows, 4096):
        stop = min(start + 4096, rows)
        out[start:stop] = full[start:stop]
    out.flush()
    del out, full
    os.replace(trimmed, path)


def _commit_dir(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move a finished temp dir into place; the old one, if replaced, goes last."""
    if target.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, trash)
        os.replace(tmp, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, target)


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps(meta, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_dataset(
    path: str | os.PathLike,
    images: np.ndarray,
    cells: pd.DataFrame,
    meta: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
    packed: bool = False,
) -> Path:
    """Write a complete dataset atomically and return its path.

    `meta` entries override the defaults (channels, crop size, feature list, ...).
    `packed=True` stores images compressed (`images.npz`) for bundling.
    """
    target = Path(path)
    images = np.asarray(images)
    cells = cells.reset_index(drop=True)
    validate_arrays(images, cells, where=str(target))
    full_meta = _default_meta(images, cells)
    full_meta.update(meta or {})
    tmp = _fresh_temp_dir(target)
    try:
        if packed:
            np.savez_compressed(tmp / PACKED_IMAGES_FILE, images=images)
        else:
            np.save(tmp / IMAGES_FILE, images)
        cells.to_parquet(tmp / CELLS_FILE, index=False)
        full_meta[CHECKSUMS_KEY] = {CELLS_FILE: file_digest(tmp / CELLS_FILE)}
        _write_meta(tmp / META_FILE, full_meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _commit_dir(tmp, target, overwrite=overwrite)
    return target


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
        self._parts = 0
        self._row_bytes = len(CHANNELS) * self.crop_size * self.crop_size
        if resume_key is None:
            self._tmp = _fresh_temp_dir(self.path)
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
        _atomic_text(self._tmp / RESUME_STATE, json.dumps(self._state()))

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
            count = start + rows
            self._parts += part is not None
        self.count = count
        expected = {f"{i:06d}.parquet" for i in range(self._parts)}
        for stray in (self._tmp / PARTS).glob("*"):  # written after the last journal line: redone
            if stray.name not in expected:
                stray.unlink()
        _atomic_text(self._tmp / JOURNAL, "".join(f"{line}\n" for line in kept))
        log.info("%s: resuming after %d batch(es), %d rows", self.path, len(self.done), self.count)
        return True

    # ------------------------------------------------------------ writing
    def append(self, images: np.ndarray, cells: pd.DataFrame, *, unit: str | None = None) -> None:
        """Write one batch: images at the next rows of `images.npy`, rows as one parquet part.

        `unit` names the batch in the journal (e.g. a well or field id) so a resumed
        run can skip it; it is required when the writer is resumable.
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
            self._journal.write(json.dumps({"unit": unit, "part": part, "start": self.count, "rows": len(cells)}) + "\n")
            self._journal.flush()
            os.fsync(self._journal.fileno())
        if unit is not None:
            self.done.append(str(unit))
        self.count = end

    def _part_paths(self) -> list[Path]:
        return [self._tmp / PARTS / f"{i:06d}.parquet" for i in range(self._parts)]

    def read_rows(self, columns: list[str] | None = None, filters: list | None = None) -> pd.DataFrame:
        """Rows written so far (e.g. only the controls' features, to fit a normaliser at the end)."""
        frames = [pq.read_table(p, columns=columns, filters=filters).to_pandas() for p in self._part_paths()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

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
            _shrink_npy(self._tmp / IMAGES_FILE, self.count)
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
        meta = _default_meta(images, header)
        meta.update(self.meta)
        del images
        meta[CHECKSUMS_KEY] = {CELLS_FILE: file_digest(self._tmp / CELLS_FILE)}
        for leftover in (JOURNAL, RESUME_STATE):
            (self._tmp / leftover).unlink(missing_ok=True)
        shutil.rmtree(self._tmp / PARTS, ignore_errors=True)
        _write_meta(self._tmp / META_FILE, meta)
        _commit_dir(self._tmp, self.path, overwrite=self.overwrite)
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


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- reading


def _cache_root() -> Path:
    root = os.environ.get("CP2IMAGE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "cp2image"


def _unpack_images(packed: Path) -> Path:
    """Unpack `images.npz` once into the cache (keyed by content hash) and return the .npy."""
    out = _cache_root() / "unpacked" / file_digest(packed)[:16] / IMAGES_FILE
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with np.load(packed) as archive:
            if "images" not in archive.files:
                raise DatasetError(f"{packed}: no 'images' array inside")
            array = archive["images"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DatasetError(f"{packed}: cannot read packed images ({err})") from err
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, out)
    return out


def open_dataset(path: str | os.PathLike, *, validate: bool = True) -> Dataset:
    """Open a dataset directory, memory-mapping its images, and validate it."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a dataset directory (it does not exist or is a file)")
    meta_path = root / META_FILE
    if not meta_path.exists():
        raise DatasetError(f"{root}: missing {META_FILE}; is this a cp2image dataset?")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(f"{meta_path}: not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise DatasetError(f"{meta_path}: expected a JSON object")

    images_path = root / IMAGES_FILE
    if not images_path.exists():
        packed = root / PACKED_IMAGES_FILE
        if not packed.exists():
            raise DatasetError(f"{root}: missing {IMAGES_FILE}")
        images_path = _unpack_images(packed)
    try:
        images = np.load(images_path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DatasetError(f"{images_path}: cannot memory-map images ({err}); the file may be truncated") from err

    cells_path = root / CELLS_FILE
    if not cells_path.exists():
        raise DatasetError(f"{root}: missing {CELLS_FILE}")
    try:
        cells = pd.read_parquet(cells_path)
    except Exception as err:  # pyarrow raises several unrelated types for corrupt files
        raise DatasetError(f"{cells_path}: cannot read parquet ({type(err).__name__}: {err})") from err
    expected = (meta.get(CHECKSUMS_KEY) or {}).get(CELLS_FILE) if isinstance(meta.get(CHECKSUMS_KEY), dict) else None
    accepted = [expected] if isinstance(expected, str) else list(expected or [])  # a list during replace_cells
    if accepted and file_digest(cells_path) not in accepted:
        raise DatasetError(
            f"{cells_path}: content does not match the SHA-256 in {META_FILE}; the file was modified or "
            f"corrupted. Re-create the dataset (or, if you edited it on purpose, write it with write_dataset/replace_cells)"
        )

    if validate:
        validate_arrays(images, cells, where=str(root))
        stored = meta.get("features") or []
        absent = [f for f in stored if f not in cells.columns]
        if absent:
            raise DatasetError(
                f"{root}: {META_FILE} lists {len(absent)} feature(s) missing from {CELLS_FILE}, "
                f"e.g. {absent[:5]}"
            )
    return Dataset(path=root, images=images, cells=cells, meta=meta)


def update_meta(path: str | os.PathLike, **entries: Any) -> None:
    """Atomically update keys of a dataset's `dataset.json`."""
    meta_path = Path(path) / META_FILE
    meta = json.loads(meta_path.read_text())
    meta.update(entries)
    tmp = meta_path.with_name(f".{META_FILE}.{uuid.uuid4().hex[:8]}")
    _write_meta(tmp, meta)
    os.replace(tmp, meta_path)


def replace_cells(path: str | os.PathLike, cells: pd.DataFrame, **meta_entries: Any) -> None:
    """Atomically replace `cells.parquet` (same row count) and update metadata."""
    root = Path(path)
    images = np.load(root / IMAGES_FILE, mmap_mode="r") if (root / IMAGES_FILE).exists() else None
    if images is not None:
        validate_arrays(images, cells.reset_index(drop=True), where=str(root))
    tmp = root / f".{CELLS_FILE}.{uuid.uuid4().hex[:8]}"
    cells.reset_index(drop=True).to_parquet(tmp, index=False)
    _swap_cells(root, tmp, meta_entries)


def replace_cells_file(path: str | os.PathLike, written: str | os.PathLike, **meta_entries: Any) -> None:
    """Like `replace_cells`, for a table already written as parquet (e.g. streamed in row groups).

    `written` must lie inside the dataset directory (the swap is a rename); it is
    checked against the images (row count, required columns) before anything changes.
    """
    root, written = Path(path), Path(written)
    if written.parent.resolve() != root.resolve():
        raise DatasetError(f"{written}: must be inside {root} to be swapped in atomically")
    meta = pq.read_metadata(written)
    images = np.load(root / IMAGES_FILE, mmap_mode="r") if (root / IMAGES_FILE).exists() else None
    if images is not None:
        validate_table(list(meta.schema.to_arrow_schema().names), meta.num_rows, images.shape[0], where=str(root))
    _swap_cells(root, written, meta_entries)


def _swap_cells(root: Path, tmp: Path, meta_entries: dict[str, Any]) -> None:
    digest = file_digest(tmp)
    # Two files cannot be swapped at once: accept the old and the new table while the
    # parquet is replaced, so that a crash at any point leaves a dataset that opens.
    old = file_digest(root / CELLS_FILE) if (root / CELLS_FILE).exists() else None
    update_meta(root, **{CHECKSUMS_KEY: {CELLS_FILE: [d for d in (old, digest) if d]}})
    os.replace(tmp, root / CELLS_FILE)
    update_meta(root, **meta_entries, **{CHECKSUMS_KEY: {CELLS_FILE: digest}})


__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "open_dataset",
    "write_dataset",
    "update_meta",
    "replace_cells",
    "replace_cells_file",
    "validate_arrays",
    "metadata_columns",
]

"""BBBC021-style TIFF fields + CellProfiler per-object table → a cp2image dataset.

Inputs (the layout of the BBBC021 release and CellProfiler's exports):

- image table (``BBBC021_v1_image.csv``): one row per field of view with
  ``Image_FileName_{DAPI,Tubulin,Actin}``, ``Image_PathName_{DAPI,Tubulin,Actin}``
  (relative to ``root`` unless absolute), ``Image_Metadata_Plate_DAPI``,
  ``Image_Metadata_Well_DAPI``, ``Image_Metadata_Compound``,
  ``Image_Metadata_Concentration`` (µM); optional ``Replicate``,
  ``Image_Metadata_Site`` (else parsed from ``_s<N>_`` in the DAPI file name),
  ``TableNumber``, ``ImageNumber``.
- per-object table (e.g. ``Nuclei.csv``): ``ImageNumber``, ``ObjectNumber``,
  ``Nuclei_Location_Center_X/Y`` (pixels, 0-based column/row as CellProfiler
  reports them) and measurement columns. Columns with a compartment prefix
  (``Nuclei_``, ``Cells_``, ``Cytoplasm_``) become feature columns under the same
  name. ExportToSpreadsheet writes them unprefixed (``AreaShape_Area``); those get
  the object name (``object_name``, or the file stem ``Nuclei``/``Cells``/
  ``Cytoplasm``) as prefix. Bookkeeping columns (``*_Location_*``,
  ``*_Number_Object_Number``, ``*_Parent_*``) are not features: position in the
  field says nothing about the crop. The centre is kept as ``Metadata_Center_X/Y``.
  Related tables (``Cells.csv``, ``Cytoplasm.csv``) may follow; their features
  join to the nuclei on (ImageNumber, ObjectNumber), as CellProfiler numbers a
  cell like the nucleus it was grown from.
- optional MoA table (``BBBC021_v1_moa.csv``: compound, concentration, moa).

How ``ImageNumber`` joins objects to fields (as CellProfiler numbers images):
1. both tables have ``TableNumber`` and the image table has ``ImageNumber`` →
   join on (TableNumber, ImageNumber) — BBBC021's image table restarts
   ImageNumber per TableNumber;
2. the image table has a unique ``ImageNumber`` column → join on it;
3. otherwise ImageNumber *k* is the image table's *k*-th data row (1-based),
   which is how CellProfiler numbers the image sets of a LoadData CSV.

Crops: the nucleus centre is rounded to the nearest pixel (halves up) and
lands on crop pixel ``(crop_size // 2, crop_size // 2)``; a cell whose window
would leave the field is skipped and counted. Intensities become uint8 by
`cp2image.data.intensity` per field (default: each channel of a field divided
by its maximum, as in the original work) or per crop.

The objects table is streamed in chunks and each field is read once per run
of consecutive objects (CellProfiler writes objects grouped by image; an
unsorted table still works but re-reads fields), so only one field and one chunk are in memory; crops go to a
`DatasetWriter`, which leaves nothing behind if anything fails.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cp2image.channels import CHANNELS, CROP_SIZE
from cp2image.data.columns import FEATURE_PREFIXES, METADATA_PREFIX
from cp2image.data.dataset import DatasetWriter
from cp2image.data.ingest_common import (
    IngestError,
    ControlRows,
    IngestSummary,
    SplitBy,
    measure_and_filter,
    annotate_moa,
    assign_splits,
    numeric_column,
    read_csv,
    read_moa_table,
    split_counts,
)
from cp2image.data.intensity import IntensityConfig, apply_limits, batch_to_uint8, channel_limits

log = logging.getLogger(__name__)

# BBBC021 names the DNA channel after its stain (DAPI); order follows CHANNELS.
TABLE_CHANNELS: dict[str, str] = {"DNA": "DAPI", "Tubulin": "Tubulin", "Actin": "Actin"}
PLATE_COLUMN = "Image_Metadata_Plate_DAPI"
WELL_COLUMN = "Image_Metadata_Well_DAPI"
COMPOUND_COLUMN = "Image_Metadata_Compound"
CONCENTRATION_COLUMN = "Image_Metadata_Concentration"
SITE_COLUMN = "Image_Metadata_Site"
REPLICATE_COLUMN = "Replicate"
REQUIRED_IMAGE_COLUMNS: tuple[str, ...] = (
    *(f"Image_FileName_{c}" for c in TABLE_CHANNELS.values()),
    *(f"Image_PathName_{c}" for c in TABLE_CHANNELS.values()),
    PLATE_COLUMN,
    WELL_COLUMN,
    COMPOUND_COLUMN,
    CONCENTRATION_COLUMN,
)
CENTER_X = "Nuclei_Location_Center_X"
CENTER_Y = "Nuclei_Location_Center_Y"
REQUIRED_OBJECT_COLUMNS: tuple[str, ...] = ("ImageNumber", "ObjectNumber", CENTER_X, CENTER_Y)
NOT_FEATURES = re.compile(r"^(Nuclei|Cells|Cytoplasm)_(Location_|Number_Object_Number$|Parent_)")
SITE_IN_NAME = re.compile(r"_s(\d+)_")

Scope = Literal["field", "crop"]


@dataclass
class FieldIngestConfig:
    """Options of `ingest_fields` (defaults reproduce the original work's crops)."""

    crop_size: int = CROP_SIZE  # crop edge in pixels, centred on the nucleus
    intensity: IntensityConfig = field(default_factory=IntensityConfig)  # max or percentile
    scope: Scope = "field"  # intensity limits per field of view or per crop
    moa_only: bool = False  # keep only treatments the MoA table annotates
    split_by: SplitBy = "well"  # Metadata_Split groups: "well" or "plate"
    seed: int = 0  # split shuffling
    object_name: str | None = None  # prefix for unprefixed measurement columns
    features: Literal["carried", "measured"] = "carried"  # CellProfiler's columns, or measure() on the crops
    n_jobs: int | None = None  # worker processes for measure() (features="measured")
    drop_failed: bool = False  # features="measured": drop cells whose segmentation failed
    strict: bool = False  # without objects: a field missing some channel files is an error (else skipped, named)
    chunk_rows: int = 20_000  # object rows read per chunk
    progress: bool = False  # tqdm bar over object rows
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.crop_size < 4:
            raise ValueError(f"crop_size must be at least 4 pixels, got {self.crop_size}")
        if self.scope not in ("field", "crop"):
            raise ValueError(f"scope must be 'field' or 'crop', got {self.scope!r}")
        if self.features not in ("carried", "measured"):
            raise ValueError(f"features must be 'carried' or 'measured', got {self.features!r}")
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be positive, got {self.chunk_rows}")


# ----------------------------------------------------------------------------- tables


def read_image_table(path: str | Path) -> pd.DataFrame:
    """Read and validate the per-field image table; adds `_image_number` (the join key)."""
    path = Path(path)
    table = read_csv(path)
    missing = [c for c in REQUIRED_IMAGE_COLUMNS if c not in table.columns]
    if missing:
        raise IngestError(
            f"{path}: image table lacks column(s) {missing}; expected the BBBC021_v1_image.csv layout "
            f"({', '.join(REQUIRED_IMAGE_COLUMNS)})"
        )
    table[CONCENTRATION_COLUMN] = numeric_column(table[CONCENTRATION_COLUMN], path=path, column=CONCENTRATION_COLUMN)
    for col in REQUIRED_IMAGE_COLUMNS:
        if col != CONCENTRATION_COLUMN and table[col].isna().any():
            row = int(np.flatnonzero(table[col].isna().to_numpy())[0])
            raise IngestError(f"{path}: column {col} is empty in data row {row + 1}")
    return table


def _join_columns(image_table: pd.DataFrame, object_columns: list[str], *, image_path: Path, objects_path: Path) -> list[str]:
    """Which columns join objects to fields (see the module docstring)."""
    if "ImageNumber" in image_table.columns:
        if "TableNumber" in image_table.columns and "TableNumber" in object_columns:
            keys = ["TableNumber", "ImageNumber"]
        else:
            keys = ["ImageNumber"]
        dup = image_table.duplicated(keys)
        if dup.any():
            hint = (
                " (it restarts per TableNumber: add the TableNumber column to the objects table)"
                if keys == ["ImageNumber"] and "TableNumber" in image_table.columns
                else ""
            )
            raise IngestError(
                f"{image_path}: column(s) {keys} repeat, e.g. {image_table.loc[dup, keys].iloc[0].tolist()}, "
                f"so objects in {objects_path} cannot be matched to one field{hint}"
            )
        return keys
    image_table["ImageNumber"] = np.arange(1, len(image_table) + 1)
    return ["ImageNumber"]


def _canonical_names(columns: list[str], *, object_name: str | None, path: Path) -> dict[str, str]:
    """Map raw object-table column names to CellProfiler `<Object>_<Measurement>` names."""
    inferred = object_name or (path.stem if path.stem in ("Nuclei", "Cells", "Cytoplasm") else None)
    keys = {"ImageNumber", "ObjectNumber", "TableNumber"}
    rename: dict[str, str] = {}
    for col in columns:
        if col in keys or col.startswith(FEATURE_PREFIXES) or col.startswith(METADATA_PREFIX):
            rename[col] = col
        elif inferred is not None:
            rename[col] = f"{inferred}_{col}"
    return rename


@dataclass
class _Plan:
    """Pass-1 result: which object rows become cells and with which metadata."""

    keep: np.ndarray  # bool per object row
    field_index: np.ndarray  # image-table row per object row (-1 where unmatched)
    split_of_field: dict[int, str]  # image-table row → split
    moa_of_field: pd.Series  # image-table row → MoA (NaN when unannotated)
    n_skipped_moa: int
    n_rows: int


def _object_reader(path: Path, usecols: list[str] | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        yield from pd.read_csv(path, usecols=usecols, chunksize=chunk_rows)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise IngestError(f"{path}: cannot parse CSV ({err})") from err


def _plan(
    image_table: pd.DataFrame,
    objects_path: Path,
    rename: dict[str, str],
    keys: list[str],
    *,
    image_path: Path,
    root: Path,
    moa_table: pd.DataFrame | None,
    config: FieldIngestConfig,
) -> _Plan:
    """Read the join keys of every object, check them and the TIFF paths, choose splits."""
    inverse = {v: k for k, v in rename.items()}
    raw_keys = [inverse[k] for k in keys]
    table_keys = [numeric_column(image_table[k], path=image_path, column=k) for k in keys]
    if any(k.isna().any() for k in table_keys):
        raise IngestError(f"{image_path}: column(s) {keys} have empty values")
    lookup = {key: row for row, key in enumerate(zip(*(k.astype(np.int64) for k in table_keys)))}
    joined_to = (
        f"column {'/'.join(keys)} of the image table"
        if "ImageNumber" in _original_columns(image_table)
        else "the 1-based row order of the image table"
    )
    rows: list[np.ndarray] = []
    for chunk in _object_reader(objects_path, raw_keys, config.chunk_rows):
        chunk = chunk.rename(columns=rename)
        values = []
        for k in keys:
            col = numeric_column(chunk[k], path=objects_path, column=k)
            if col.isna().any():
                raise IngestError(f"{objects_path}: column {k} has empty values")
            values.append(col.astype(np.int64).to_numpy())
        found = np.array([lookup.get(key, -1) for key in zip(*values)], dtype=np.int64)
        if (found < 0).any():
            bad = sorted({key for key, f in zip(zip(*values), found) if f < 0})[:5]
            bad_text = [int(b[0]) if len(b) == 1 else [int(v) for v in b] for b in bad]
            raise IngestError(
                f"{objects_path}: column {'/'.join(keys)} value(s) {bad_text} have no matching row in the "
                f"image table {image_path} (objects join to {joined_to})"
            )
        rows.append(found)
    field_index = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)

    moa = (
        annotate_moa(image_table[COMPOUND_COLUMN], image_table[CONCENTRATION_COLUMN], moa_table)
        if moa_table is not None
        else pd.Series(np.nan, index=image_table.index, dtype=object)
    )
    keep = np.ones(len(field_index), dtype=bool)
    if config.moa_only:
        if moa_table is None:
            raise IngestError("--moa-only needs an MoA table (--moa-table BBBC021_v1_moa.csv)")
        keep &= moa.notna().to_numpy()[field_index]
    n_skipped_moa = int((~keep).sum())

    used = np.unique(field_index[keep])
    for row in used:
        for table_channel in TABLE_CHANNELS.values():
            p = _channel_path(image_table, row, table_channel, root)
            if not p.is_file():
                raise IngestError(
                    f"{image_path}: Image_FileName_{table_channel} of data row {row + 1} points to a missing file {p}"
                )

    fields = image_table.iloc[used]
    meta = pd.DataFrame(
        {
            "Metadata_Plate": fields[PLATE_COLUMN].astype(str).to_numpy(),
            "Metadata_Well": fields[WELL_COLUMN].astype(str).to_numpy(),
            "Metadata_Compound": fields[COMPOUND_COLUMN].astype(str).to_numpy(),
            "Metadata_Concentration": fields[CONCENTRATION_COLUMN].to_numpy(),
        },
        index=used,
    )
    splits = assign_splits(meta, by=config.split_by, seed=config.seed) if len(meta) else pd.Series(dtype=object)
    return _Plan(
        keep=keep,
        field_index=field_index,
        split_of_field=dict(zip(used.tolist(), splits.tolist())),
        moa_of_field=moa,
        n_skipped_moa=n_skipped_moa,
        n_rows=len(field_index),
    )


def _original_columns(table: pd.DataFrame) -> list[str]:
    return list(table.attrs.get("original_columns", table.columns))


# ----------------------------------------------------------------------------- fields


def _channel_path(image_table: pd.DataFrame, row: int, table_channel: str, root: Path) -> Path:
    folder = str(image_table[f"Image_PathName_{table_channel}"].iat[row])
    name = str(image_table[f"Image_FileName_{table_channel}"].iat[row])
    return root / folder / name


def read_field(image_table: pd.DataFrame, row: int, *, root: Path, image_path: Path) -> np.ndarray:
    """The raw (3, H, W) field of image-table row `row`, channels in CHANNELS order.

    Each channel must be a single-plane unsigned-integer TIFF (BBBC021: 16-bit)
    and all three must have the same shape; errors name the file and column.
    """
    import tifffile

    planes = []
    for channel in CHANNELS:
        table_channel = TABLE_CHANNELS[channel]
        column = f"Image_FileName_{table_channel}"
        p = _channel_path(image_table, row, table_channel, root)
        where = f"{p} ({column}, data row {row + 1} of {image_path})"
        try:
            plane = tifffile.imread(p)
        except FileNotFoundError as err:
            raise IngestError(f"{where}: file not found") from err
        except (tifffile.TiffFileError, ValueError, OSError, IndexError) as err:
            raise IngestError(f"{where}: unreadable TIFF ({type(err).__name__}: {err})") from err
        plane = np.asarray(plane)
        if plane.ndim != 2:
            squeezed = plane.squeeze()
            if squeezed.ndim != 2:
                raise IngestError(
                    f"{where}: expected one grayscale plane (H, W), got shape {plane.shape}; "
                    "export one TIFF per channel"
                )
            plane = squeezed
        if plane.dtype.kind != "u":
            raise IngestError(
                f"{where}: expected an unsigned-integer (e.g. 16-bit) grayscale TIFF, got dtype {plane.dtype}"
            )
        if planes and plane.shape != planes[0].shape:
            raise IngestError(
                f"{where}: shape {plane.shape} differs from the {CHANNELS[0]} channel's {planes[0].shape}"
            )
        planes.append(plane)
    return np.stack(planes)


def crop_windows(
    centres_x: np.ndarray, centres_y: np.ndarray, *, height: int, width: int, crop_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top-left corners of centred crops and which fit inside the field.

    Returns (x0, y0, inside, finite): centre pixel = floor(c + 0.5), corner =
    centre - crop_size // 2; `inside` is False where the window leaves the
    field, `finite` False for NaN centres.
    """
    cx = np.asarray(centres_x, dtype=np.float64)
    cy = np.asarray(centres_y, dtype=np.float64)
    finite = np.isfinite(cx) & np.isfinite(cy)
    half = crop_size // 2
    x0 = np.where(finite, np.floor(np.where(finite, cx, 0) + 0.5), 0).astype(np.int64) - half
    y0 = np.where(finite, np.floor(np.where(finite, cy, 0) + 0.5), 0).astype(np.int64) - half
    inside = finite & (x0 >= 0) & (y0 >= 0) & (x0 + crop_size <= width) & (y0 + crop_size <= height)
    return x0, y0, inside, finite


# ----------------------------------------------------------------------------- object tables


@dataclass
class _ObjectTable:
    """One per-object CSV: its raw header, canonical names and carried feature columns."""

    path: Path
    header: list[str]
    rename: dict[str, str]  # raw → canonical (only columns we understand)
    features: list[str]  # canonical feature names carried from this table


def _object_table(path: Path, *, object_name: str | None, primary: bool) -> _ObjectTable:
    header = [str(c) for c in read_csv(path, nrows=0).columns]
    rename = _canonical_names(header, object_name=object_name, path=path)
    renamed = set(rename.values())
    required = REQUIRED_OBJECT_COLUMNS if primary else ("ImageNumber", "ObjectNumber")
    missing = [c for c in required if c not in renamed]
    if missing:
        raise IngestError(
            f"{path}: objects table lacks column(s) {missing}; CellProfiler per-object tables carry "
            f"{list(required)} (unprefixed ExportToSpreadsheet columns need --object-name Nuclei "
            "or a file named Nuclei.csv/Cells.csv/Cytoplasm.csv)"
        )
    features = [rename[c] for c in header if c in rename and rename[c].startswith(FEATURE_PREFIXES)
                and not NOT_FEATURES.match(rename[c])]
    if not primary and not features:
        raise IngestError(f"{path}: no feature columns found; name the file Cells.csv or Cytoplasm.csv "
                          "(unprefixed columns take the file name as prefix) or prefix its columns")
    return _ObjectTable(path=path, header=header, rename=rename, features=features)


def _related_features(tables: list[_ObjectTable], keys: list[str], *, taken: set[str]) -> pd.DataFrame | None:
    """Features of the related tables (Cells.csv, Cytoplasm.csv), indexed by (keys..., ObjectNumber).

    CellProfiler numbers a cell and its cytoplasm like the nucleus they grew
    from, so these join to the nuclei on (ImageNumber, ObjectNumber). They are
    held in memory (features only), unlike the streamed primary table.
    """
    frames = []
    for t in tables:
        clash = sorted(taken & set(t.features))
        if clash:
            raise IngestError(f"{t.path}: feature column(s) {clash[:5]} already come from another objects table")
        taken |= set(t.features)
        inverse = {v: k for k, v in t.rename.items()}
        index_cols = [*keys, "ObjectNumber"]
        if any(k not in inverse for k in index_cols):
            raise IngestError(f"{t.path}: needs column(s) {index_cols} to join to the nuclei")
        frame = read_csv(t.path, usecols=[inverse[c] for c in (*index_cols, *t.features)]).rename(columns=t.rename)
        for col in (*index_cols, *t.features):
            frame[col] = numeric_column(frame[col], path=t.path, column=col)
        frame = frame.dropna(subset=index_cols)
        frame[index_cols] = frame[index_cols].astype(np.int64)
        dup = frame.duplicated(index_cols)
        if dup.any():
            raise IngestError(f"{t.path}: {index_cols} {frame.loc[dup, index_cols].iloc[0].tolist()} appears twice")
        frames.append(frame.set_index(index_cols)[t.features])
    return pd.concat(frames, axis=1) if frames else None


# ----------------------------------------------------------------------------- main


def _site(image_table: pd.DataFrame, row: int) -> float:
    if SITE_COLUMN in image_table.columns:
        value = pd.to_numeric(pd.Series([image_table[SITE_COLUMN].iat[row]]), errors="coerce").iat[0]
        return float(value)
    match = SITE_IN_NAME.search(str(image_table["Image_FileName_DAPI"].iat[row]))
    return float(match.group(1)) if match else np.nan


class _FieldCropper:
    """Reads each field once per run of its objects and cuts normalised crops."""

    def __init__(self, table: pd.DataFrame, *, root: Path, image_path: Path, config: FieldIngestConfig) -> None:
        self.table, self.root, self.image_path, self.config = table, root, image_path, config
        self._cached: tuple[int, np.ndarray, tuple[np.ndarray, np.ndarray] | None] | None = None
        self.fields_seen: set[int] = set()

    def crops(self, row: int, objects: pd.DataFrame, summary: IngestSummary) -> tuple[np.ndarray, np.ndarray]:
        """uint8 crops (n, 3, s, s) of the objects that fit, and the boolean mask of those objects."""
        if self._cached is None or self._cached[0] != row:
            raw = read_field(self.table, row, root=self.root, image_path=self.image_path)
            limits = channel_limits(raw, self.config.intensity) if self.config.scope == "field" else None
            self._cached = (row, raw, limits)
            self.fields_seen.add(row)
        _, raw, limits = self._cached
        s = self.config.crop_size
        x0, y0, inside, finite = crop_windows(objects[CENTER_X].to_numpy(), objects[CENTER_Y].to_numpy(),
                                              height=raw.shape[1], width=raw.shape[2], crop_size=s)
        summary.n_skipped_no_centre += int((~finite).sum())
        summary.n_skipped_border += int((finite & ~inside).sum())
        if not inside.any():
            return np.zeros((0, len(CHANNELS), s, s), dtype=np.uint8), inside
        stack = np.stack([raw[:, y:y + s, x:x + s] for x, y in zip(x0[inside], y0[inside])])  # (n, 3, s, s)
        if limits is not None:
            return apply_limits(stack, limits[0], limits[1], channel_axis=1), inside
        return batch_to_uint8(stack, self.config.intensity), inside


def ingest_fields(
    image_table: str | Path,
    objects: str | Path | list[str | Path],
    out: str | Path,
    *,
    root: str | Path,
    moa_table: str | Path | None = None,
    config: FieldIngestConfig | None = None,
    client=None,
) -> IngestSummary:
    """Crop every nucleus of the objects table out of its field and write a dataset at `out`.

    With `features="measured"` and a dask `client` (`cp2image.distributed`), each
    batch's crops are measured as dask tasks (chunks of crops) on that cluster.

    `objects` is one per-object CSV with the nucleus centres (e.g. Nuclei.csv),
    or a list whose first entry is that table and whose others (Cells.csv,
    Cytoplasm.csv) add features joined on (ImageNumber, ObjectNumber).
    Raises `IngestError` (a ValueError) naming the file and column for bad
    input; in that case no dataset (and no temporary directory) is left.
    """
    config = config or FieldIngestConfig()
    object_paths = [Path(p) for p in (objects if isinstance(objects, (list, tuple)) else [objects])]
    if not object_paths:
        raise IngestError("no objects table given")
    image_path, root, out = Path(image_table), Path(root), Path(out)
    if not root.is_dir():
        raise IngestError(f"{root}: image root folder not found (the Image_PathName_* columns are relative to it)")
    table = read_image_table(image_path)
    table.attrs["original_columns"] = list(table.columns)
    moa = read_moa_table(moa_table) if moa_table is not None else None

    primary = _object_table(object_paths[0], object_name=config.object_name, primary=True)
    related = [_object_table(p, object_name=None, primary=False) for p in object_paths[1:]]
    objects_path = primary.path
    keys = _join_columns(table, list(primary.rename.values()), image_path=image_path, objects_path=objects_path)
    measure = None
    if config.features == "measured":
        from cp2image.features import feature_names as measured_names, measure

        if client is not None:
            measure = partial(measure, client=client)

        primary.features, related = [], []  # CellProfiler's columns are not carried; measure() supplies features
    related_frame = _related_features(related, keys, taken=set(primary.features))
    carried = primary.features + [f for t in related for f in t.features]
    plan = _plan(table, objects_path, primary.rename, keys, image_path=image_path, root=root,
                 moa_table=moa, config=config)

    stored_features = carried if measure is None else measured_names()
    summary = IngestSummary(out=out, source="fields", n_objects=plan.n_rows, n_skipped_moa=plan.n_skipped_moa,
                            n_features=len(stored_features))
    meta = {
        "features": stored_features,
        "intensity": {**asdict(config.intensity), "scope": config.scope},
        "provenance": {
            "source": "cellprofiler-fields",
            "image_table": str(image_path),
            "objects": [str(p) for p in object_paths],
            "moa_table": str(moa_table) if moa_table is not None else None,
            "root": str(root),
            "crop_size": config.crop_size,
            "join": keys if "ImageNumber" in _original_columns(table) else "row order (1-based)",
            "moa_only": config.moa_only,
            "split_by": config.split_by,
            "seed": config.seed,
            "features": "carried from the objects tables" if measure is None else "cp2image.features.measure",
        },
    }
    from tqdm.auto import tqdm

    cropper = _FieldCropper(table, root=root, image_path=image_path, config=config)
    wanted = {*keys, "ObjectNumber", CENTER_X, CENTER_Y, *primary.features}
    usecols = [c for c in primary.header if primary.rename.get(c) in wanted]
    bar = tqdm(total=plan.n_rows, desc="ingest", unit="cell", disable=not config.progress)
    controls = ControlRows()
    try:
        with DatasetWriter(out, max(int(plan.keep.sum()), 1), crop_size=config.crop_size, meta=meta,
                           overwrite=config.overwrite) as writer:
            start = 0
            for chunk in _object_reader(objects_path, usecols, config.chunk_rows):
                chunk = chunk.rename(columns=primary.rename).reset_index(drop=True)
                keep = plan.keep[start:start + len(chunk)]
                rows_of = plan.field_index[start:start + len(chunk)][keep]
                start += len(chunk)
                bar.update(len(chunk))
                chunk = chunk[keep].reset_index(drop=True)
                if chunk.empty:
                    continue
                for col in (CENTER_X, CENTER_Y, "ObjectNumber", *primary.features):
                    chunk[col] = numeric_column(chunk[col], path=objects_path, column=col)
                if chunk["ObjectNumber"].isna().any():
                    raise IngestError(f"{objects_path}: column ObjectNumber has empty values")
                if related_frame is not None:
                    chunk = _join_related(chunk, related_frame, keys, summary)
                crops, cells = [], []
                for run in np.split(np.arange(len(rows_of)), np.flatnonzero(np.diff(rows_of)) + 1):
                    row = int(rows_of[run[0]])  # a run of consecutive objects from one field
                    part = chunk.iloc[run]
                    images, inside = cropper.crops(row, part, summary)
                    if len(images):
                        crops.append(images)
                        cells.append(_cell_rows(table, row, part[inside], carried, plan))
                if not crops:
                    continue
                batch_images, batch_cells = np.concatenate(crops), pd.concat(cells, ignore_index=True)
                if measure is not None:
                    batch_images, batch_cells = measure_and_filter(
                        batch_images, batch_cells, measure, n_jobs=config.n_jobs,
                        drop_failed=config.drop_failed, summary=summary)
                writer.append(batch_images, batch_cells)
                controls.add(batch_cells)
                summary.n_written += len(batch_cells)
                for name, count in split_counts(batch_cells["Metadata_Split"]).items():
                    summary.splits[name] = summary.splits.get(name, 0) + count
            if summary.n_written == 0:
                raise IngestError(
                    f"{objects_path}: no cell could be cropped or segmented ({summary.n_skipped_border} too close to the border, "
                    f"{summary.n_skipped_no_centre} without a centre, {summary.n_skipped_moa} without MoA)"
                )
            # inside the block: the dataset appears with its normalisation statistics or not at all
            writer.meta["normalisation"] = controls.normalisation()
    finally:
        bar.close()
    summary.n_images = len(cropper.fields_seen)
    if summary.n_unmatched_related:
        log.warning("%d nuclei had no row in a related objects table; their features from it are NaN",
                    summary.n_unmatched_related)
    log.info("ingested %d cells from %d fields into %s", summary.n_written, summary.n_images, out)
    return summary


def _join_related(chunk: pd.DataFrame, related: pd.DataFrame, keys: list[str], summary: IngestSummary) -> pd.DataFrame:
    """Append the related tables' features to a chunk of nuclei (NaN where no row matches)."""
    index = pd.MultiIndex.from_frame(chunk[[*keys, "ObjectNumber"]].astype(np.int64))
    extra = related.reindex(index)
    summary.n_unmatched_related += int(extra.isna().all(axis=1).sum())
    return pd.concat([chunk, extra.reset_index(drop=True)], axis=1)


def _cell_rows(table: pd.DataFrame, row: int, objects: pd.DataFrame, feature_names: list[str], plan: _Plan) -> pd.DataFrame:
    """Metadata + carried features for the cropped objects of one field."""
    n = len(objects)
    meta = {
        "Metadata_Plate": [str(table[PLATE_COLUMN].iat[row])] * n,
        "Metadata_Well": [str(table[WELL_COLUMN].iat[row])] * n,
        "Metadata_Site": np.full(n, _site(table, row)),
        "Metadata_Compound": [str(table[COMPOUND_COLUMN].iat[row])] * n,
        "Metadata_Concentration": np.full(n, float(table[CONCENTRATION_COLUMN].iat[row])),
        "Metadata_MoA": [plan.moa_of_field.iat[row]] * n,
        "Metadata_ImageNumber": objects["ImageNumber"].to_numpy(dtype=np.int64),
        "Metadata_ObjectNumber": objects["ObjectNumber"].to_numpy(dtype=np.int64),
        "Metadata_Center_X": objects[CENTER_X].to_numpy(dtype=np.float64),
        "Metadata_Center_Y": objects[CENTER_Y].to_numpy(dtype=np.float64),
        "Metadata_Source_File": [str(table["Image_FileName_DAPI"].iat[row])] * n,
        "Metadata_Split": [plan.split_of_field[row]] * n,
    }
    frame = pd.DataFrame(meta)
    if REPLICATE_COLUMN in table.columns:
        frame.insert(3, "Metadata_Replicate", table[REPLICATE_COLUMN].iat[row])
    features = objects[feature_names].reset_index(drop=True).astype(np.float64)
    return pd.concat([frame, features], axis=1)


__all__ = ["FieldIngestConfig", "ingest_fields", "read_image_table", "read_field", "crop_windows"]

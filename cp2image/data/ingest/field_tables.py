"""The tables of `ingest fields`: the image table, the per-object CSVs and how they join.

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
  field says nothing about the crop. Related tables (``Cells.csv``,
  ``Cytoplasm.csv``) may follow; their features join to the nuclei on
  (ImageNumber, ObjectNumber), as CellProfiler numbers a cell like the nucleus it
  was grown from.

How ``ImageNumber`` joins objects to fields (as CellProfiler numbers images):
1. both tables have ``TableNumber`` and the image table has ``ImageNumber`` →
   join on (TableNumber, ImageNumber) — BBBC021's image table restarts
   ImageNumber per TableNumber;
2. the image table has a unique ``ImageNumber`` column → join on it;
3. otherwise ImageNumber *k* is the image table's *k*-th data row (1-based),
   which is how CellProfiler numbers the image sets of a LoadData CSV.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.data.columns import COMPOUND, CONCENTRATION, FEATURE_PREFIXES, METADATA_PREFIX, PLATE, WELL
from cp2image.data.ingest.config import FieldIngestConfig
from cp2image.data.ingest.splits import assign_splits
from cp2image.data.ingest.summary import IngestError
from cp2image.data.ingest.tables import annotate_moa, numeric_column, read_csv

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


def join_columns(image_table: pd.DataFrame, object_columns: list[str], *, image_path: Path, objects_path: Path) -> list[str]:
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


def canonical_names(columns: list[str], *, object_name: str | None, path: Path) -> dict[str, str]:
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
class Plan:
    """Pass-1 result: which object rows become cells and with which metadata."""

    keep: np.ndarray  # bool per object row
    field_index: np.ndarray  # image-table row per object row (-1 where unmatched)
    split_of_field: dict[int, str]  # image-table row → split
    moa_of_field: pd.Series  # image-table row → MoA (NaN when unannotated)
    n_skipped_moa: int
    n_rows: int


def object_reader(path: Path, usecols: list[str] | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        yield from pd.read_csv(path, usecols=usecols, chunksize=chunk_rows)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise IngestError(f"{path}: cannot parse CSV ({err})") from err


def _field_index(image_table: pd.DataFrame, objects_path: Path, rename: dict[str, str], keys: list[str], *,
                 image_path: Path, chunk_rows: int) -> np.ndarray:
    """Image-table row of every object row, read in chunks; unknown keys are an error naming them."""
    inverse = {v: k for k, v in rename.items()}
    table_keys = [numeric_column(image_table[k], path=image_path, column=k) for k in keys]
    if any(k.isna().any() for k in table_keys):
        raise IngestError(f"{image_path}: column(s) {keys} have empty values")
    lookup = {key: row for row, key in enumerate(zip(*(k.astype(np.int64) for k in table_keys)))}
    joined_to = (
        f"column {'/'.join(keys)} of the image table"
        if "ImageNumber" in original_columns(image_table)
        else "the 1-based row order of the image table"
    )
    rows: list[np.ndarray] = []
    for chunk in object_reader(objects_path, [inverse[k] for k in keys], chunk_rows):
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
    return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)


def field_moa(image_table: pd.DataFrame, moa_table: pd.DataFrame | None) -> pd.Series:
    """MoA of every field (image-table row); NaN without a table or an entry in it."""
    if moa_table is None:
        return pd.Series(np.nan, index=image_table.index, dtype=object)
    return annotate_moa(image_table[COMPOUND_COLUMN], image_table[CONCENTRATION_COLUMN], moa_table)


def field_splits(image_table: pd.DataFrame, rows: list[int] | np.ndarray, config: FieldIngestConfig) -> dict[int, str]:
    """`Metadata_Split` of each field (image-table row), by well or plate as `config.split_by` says."""
    fields = image_table.iloc[list(rows)]
    meta = pd.DataFrame({
        PLATE: fields[PLATE_COLUMN].astype(str).to_numpy(),
        WELL: fields[WELL_COLUMN].astype(str).to_numpy(),
        COMPOUND: fields[COMPOUND_COLUMN].astype(str).to_numpy(),
        CONCENTRATION: fields[CONCENTRATION_COLUMN].to_numpy(),
    }, index=list(rows))
    if not len(meta):
        return {}
    return dict(zip(meta.index.tolist(), assign_splits(meta, by=config.split_by, seed=config.seed).tolist()))


def plan_objects(
    image_table: pd.DataFrame,
    objects_path: Path,
    rename: dict[str, str],
    keys: list[str],
    *,
    image_path: Path,
    root: Path,
    moa_table: pd.DataFrame | None,
    config: FieldIngestConfig,
) -> Plan:
    """Read the join keys of every object, check them and the TIFF paths, choose splits."""
    field_index = _field_index(image_table, objects_path, rename, keys, image_path=image_path,
                               chunk_rows=config.chunk_rows)
    moa = field_moa(image_table, moa_table)
    keep = np.ones(len(field_index), dtype=bool)
    if config.moa_only:
        if moa_table is None:
            raise IngestError("--moa-only needs an MoA table (--moa-table BBBC021_v1_moa.csv)")
        keep &= moa.notna().to_numpy()[field_index]
    used = np.unique(field_index[keep])
    for row in used:
        for table_channel in TABLE_CHANNELS.values():
            p = channel_path(image_table, row, table_channel, root)
            if not p.is_file():
                raise IngestError(
                    f"{image_path}: Image_FileName_{table_channel} of data row {row + 1} points to a missing file {p}"
                )
    return Plan(keep=keep, field_index=field_index, split_of_field=field_splits(image_table, used, config),
                moa_of_field=moa, n_skipped_moa=int((~keep).sum()), n_rows=len(field_index))


def original_columns(table: pd.DataFrame) -> list[str]:
    return list(table.attrs.get("original_columns", table.columns))


def channel_path(image_table: pd.DataFrame, row: int, table_channel: str, root: Path) -> Path:
    folder = str(image_table[f"Image_PathName_{table_channel}"].iat[row])
    name = str(image_table[f"Image_FileName_{table_channel}"].iat[row])
    return root / folder / name


@dataclass
class ObjectTable:
    """One per-object CSV: its raw header, canonical names and carried feature columns."""

    path: Path
    header: list[str]
    rename: dict[str, str]  # raw → canonical (only columns we understand)
    features: list[str]  # canonical feature names carried from this table


def object_table(path: Path, *, object_name: str | None, primary: bool) -> ObjectTable:
    header = [str(c) for c in read_csv(path, nrows=0).columns]
    rename = canonical_names(header, object_name=object_name, path=path)
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
    return ObjectTable(path=path, header=header, rename=rename, features=features)


def related_features(tables: list[ObjectTable], keys: list[str], *, taken: set[str]) -> pd.DataFrame | None:
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



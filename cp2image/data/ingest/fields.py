"""BBBC021-style TIFF fields + CellProfiler per-object table → a cp2image dataset (`ingest fields --objects`).

The tables and how they join are described in `field_tables.py`, the crops in
`field_images.py`. The objects table is streamed in chunks of ``chunk_rows`` rows
and each field is read once per run of consecutive objects (CellProfiler writes
objects grouped by image; an unsorted table still works but re-reads fields), so
only one field and one chunk are in memory. Each chunk is one unit of the
resumable `IngestStream`: a killed run continues after its last written chunk.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.data.ingest.config import FieldIngestConfig
from cp2image.data.ingest.field_images import FieldCropper, field_site
from cp2image.data.ingest.field_tables import (
    CENTER_X,
    CENTER_Y,
    COMPOUND_COLUMN,
    CONCENTRATION_COLUMN,
    PLATE_COLUMN,
    REPLICATE_COLUMN,
    WELL_COLUMN,
    ObjectTable,
    Plan,
    join_columns,
    object_reader,
    object_table,
    original_columns,
    plan_objects,
    read_image_table,
    related_features,
)
from cp2image.data.ingest.streaming import IngestStream, measure_and_filter, resume_key
from cp2image.data.ingest.summary import IngestError, IngestSummary
from cp2image.data.ingest.tables import numeric_column, read_moa_table

log = logging.getLogger(__name__)


@dataclass
class _Job:
    """Everything the chunk loop needs, decided before the first crop is cut."""

    table: pd.DataFrame
    primary: ObjectTable
    keys: list[str]
    related: pd.DataFrame | None  # related tables' features by (keys..., ObjectNumber)
    carried: list[str]  # feature columns carried from the objects tables
    plan: Plan
    measure: object  # cp2image.features.measure (bound to a client) or None


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

    `objects` is one per-object CSV with the nucleus centres (e.g. Nuclei.csv),
    or a list whose first entry is that table and whose others (Cells.csv,
    Cytoplasm.csv) add features joined on (ImageNumber, ObjectNumber).
    With `features="measured"` and a dask `client` (`cp2image.distributed`), each
    chunk's crops are measured as dask tasks on that cluster.
    A run killed part-way resumes when called again with the same files and
    options (`config.restart` discards the unfinished work instead) and ends with
    the dataset an uninterrupted run writes.
    Raises `IngestError` (a ValueError) naming the file and column for bad input;
    in that case no dataset is left.
    """
    config = config or FieldIngestConfig()
    object_paths = [Path(p) for p in (objects if isinstance(objects, (list, tuple)) else [objects])]
    if not object_paths:
        raise IngestError("no objects table given")
    image_path, root, out = Path(image_table), Path(root), Path(out)
    job = _prepare(image_path, object_paths, root, moa_table, config, client)
    summary = IngestSummary(out=out, source="fields", n_objects=job.plan.n_rows, n_skipped_moa=job.plan.n_skipped_moa)
    meta = _dataset_meta(job, image_path, object_paths, moa_table, root, config)
    key = resume_key({"image_table": image_path, "objects": object_paths, "moa_table": moa_table},
                     {**asdict(config), "root": str(root.resolve())})
    n_chunks = -(-job.plan.n_rows // config.chunk_rows)
    with IngestStream(out, int(job.plan.keep.sum()), crop_size=config.crop_size, meta=meta, key=key,
                      summary=summary, units=n_chunks, unit_name="chunks of the objects table",
                      overwrite=config.overwrite, restart=config.restart) as stream:
        _stream_chunks(job, stream, image_path=image_path, root=root, config=config)
        if summary.n_written == 0:
            stream.abort()
            raise IngestError(
                f"{job.primary.path}: no cell could be cropped or segmented ({summary.n_skipped_border} too close "
                f"to the border, {summary.n_skipped_no_centre} without a centre, {summary.n_skipped_moa} without MoA)"
            )
    summary.n_images = len({row for rows in stream.extras("fields") for row in rows})
    summary.n_features = len(meta["features"])
    if summary.n_unmatched_related:
        log.warning("%d nuclei had no row in a related objects table; their features from it are NaN",
                    summary.n_unmatched_related)
    log.info("ingested %d cells from %d fields into %s", summary.n_written, summary.n_images, out)
    return summary


def _prepare(image_path: Path, object_paths: list[Path], root: Path, moa_table, config: FieldIngestConfig,
             client) -> _Job:
    """Read and check the tables, choose the features and plan which objects become cells."""
    if not root.is_dir():
        raise IngestError(f"{root}: image root folder not found (the Image_PathName_* columns are relative to it)")
    table = read_image_table(image_path)
    table.attrs["original_columns"] = list(table.columns)
    moa = read_moa_table(moa_table) if moa_table is not None else None
    primary = object_table(object_paths[0], object_name=config.object_name, primary=True)
    related = [object_table(p, object_name=None, primary=False) for p in object_paths[1:]]
    keys = join_columns(table, list(primary.rename.values()), image_path=image_path, objects_path=primary.path)
    measure = None
    if config.features == "measured":
        from cp2image.features import measure

        measure = partial(measure, client=client) if client is not None else measure
        primary.features, related = [], []  # CellProfiler's columns are not carried; measure() supplies features
    related_frame = related_features(related, keys, taken=set(primary.features))
    carried = primary.features + [f for t in related for f in t.features]
    plan = plan_objects(table, primary.path, primary.rename, keys, image_path=image_path, root=root,
                        moa_table=moa, config=config)
    return _Job(table=table, primary=primary, keys=keys, related=related_frame, carried=carried, plan=plan,
                measure=measure)


def _dataset_meta(job: _Job, image_path: Path, object_paths: list[Path], moa_table, root: Path,
                  config: FieldIngestConfig) -> dict:
    if job.measure is None:
        features = job.carried
    else:
        from cp2image.features import feature_names

        features = feature_names()
    return {
        "features": features,
        "intensity": {**asdict(config.intensity), "scope": config.scope},
        "provenance": {
            "source": "cellprofiler-fields",
            "image_table": str(image_path),
            "objects": [str(p) for p in object_paths],
            "moa_table": str(moa_table) if moa_table is not None else None,
            "root": str(root),
            "crop_size": config.crop_size,
            "join": job.keys if "ImageNumber" in original_columns(job.table) else "row order (1-based)",
            "moa_only": config.moa_only,
            "split_by": config.split_by,
            "seed": config.seed,
            "features": "carried from the objects tables" if job.measure is None else "cp2image.features.measure",
        },
    }


def _stream_chunks(job: _Job, stream: IngestStream, *, image_path: Path, root: Path, config: FieldIngestConfig) -> None:
    """Crop (and measure) each chunk of the objects table that an earlier run did not write."""
    from tqdm.auto import tqdm

    cropper = FieldCropper(job.table, root=root, image_path=image_path, config=config)
    wanted = {*job.keys, "ObjectNumber", CENTER_X, CENTER_Y, *job.primary.features}
    usecols = [c for c in job.primary.header if job.primary.rename.get(c) in wanted]
    start = 0
    with tqdm(total=job.plan.n_rows, desc="ingest", unit="cell", disable=not config.progress) as bar:
        for number, chunk in enumerate(object_reader(job.primary.path, usecols, config.chunk_rows)):
            keep = job.plan.keep[start:start + len(chunk)]
            rows_of = job.plan.field_index[start:start + len(chunk)][keep]
            start += len(chunk)
            bar.update(len(chunk))
            if str(number) in stream.done:
                continue
            seen = set(cropper.fields_seen)
            images, cells = _chunk_cells(job, chunk.rename(columns=job.primary.rename)[keep].reset_index(drop=True),
                                         rows_of, cropper, stream.summary, config)
            stream.write(str(number), images, cells, extra={"fields": sorted(cropper.fields_seen - seen)})


def _chunk_cells(job: _Job, chunk: pd.DataFrame, rows_of: np.ndarray, cropper: FieldCropper,
                 summary: IngestSummary, config: FieldIngestConfig) -> tuple[np.ndarray, pd.DataFrame]:
    """Crops and cell rows (metadata + features) of one chunk's kept objects; empty when none fits."""
    empty = (np.zeros((0, 3, config.crop_size, config.crop_size), dtype=np.uint8), pd.DataFrame())
    if chunk.empty:
        return empty
    path = job.primary.path
    for col in (CENTER_X, CENTER_Y, "ObjectNumber", *job.primary.features):
        chunk[col] = numeric_column(chunk[col], path=path, column=col)
    if chunk["ObjectNumber"].isna().any():
        raise IngestError(f"{path}: column ObjectNumber has empty values")
    if job.related is not None:
        chunk = _join_related(chunk, job.related, job.keys, summary)
    crops, cells = [], []
    for run in np.split(np.arange(len(rows_of)), np.flatnonzero(np.diff(rows_of)) + 1):
        row = int(rows_of[run[0]])  # a run of consecutive objects from one field
        part = chunk.iloc[run]
        images, inside = cropper.crops(row, part, summary)
        if len(images):
            crops.append(images)
            cells.append(_cell_rows(job.table, row, part[inside], job.carried, job.plan))
    if not crops:
        return empty
    images, rows = np.concatenate(crops), pd.concat(cells, ignore_index=True)
    if job.measure is not None:
        images, rows = measure_and_filter(images, rows, job.measure, n_jobs=config.n_jobs,
                                          drop_failed=config.drop_failed, summary=summary)
    return images, rows


def _join_related(chunk: pd.DataFrame, related: pd.DataFrame, keys: list[str], summary: IngestSummary) -> pd.DataFrame:
    """Append the related tables' features to a chunk of nuclei (NaN where no row matches)."""
    index = pd.MultiIndex.from_frame(chunk[[*keys, "ObjectNumber"]].astype(np.int64))
    extra = related.reindex(index)
    summary.n_unmatched_related += int(extra.isna().all(axis=1).sum())
    return pd.concat([chunk, extra.reset_index(drop=True)], axis=1)


def _cell_rows(table: pd.DataFrame, row: int, objects: pd.DataFrame, feature_names: list[str], plan: Plan) -> pd.DataFrame:
    """Metadata + carried features for the cropped objects of one field."""
    n = len(objects)
    meta = {
        "Metadata_Plate": [str(table[PLATE_COLUMN].iat[row])] * n,
        "Metadata_Well": [str(table[WELL_COLUMN].iat[row])] * n,
        "Metadata_Site": np.full(n, field_site(table, row)),
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

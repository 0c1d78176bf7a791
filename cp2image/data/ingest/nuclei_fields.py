"""Raw BBBC021-style fields *without* a per-object table: find the nuclei, crop, measure.

The official BBBC021 download is TIFF fields plus the image and MoA tables; it has
no CellProfiler per-object table. `ingest_fields_finding_nuclei` therefore finds the
nuclei itself (`nuclei.find_nuclei`) and crops around them (`nuclei.crop_field`).

Files: a field whose three channel files are all absent was not downloaded and is
skipped (counted); a field with some but not all files is incomplete: it is skipped
and each missing file is reported by name, or, with ``strict``, it is an error.
The dataset is written in two passes (nuclei first, then crops and features, one
field per unit of the resumable `IngestStream`) so its size is known before
anything is written. Pass 1 runs again on a resumed run: it sizes the dataset.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.data.ingest.config import FieldIngestConfig
from cp2image.data.ingest.field_images import field_site, read_field
from cp2image.data.ingest.field_tables import (
    COMPOUND_COLUMN,
    CONCENTRATION_COLUMN,
    PLATE_COLUMN,
    REPLICATE_COLUMN,
    TABLE_CHANNELS,
    WELL_COLUMN,
    channel_path,
    field_moa,
    field_splits,
    read_image_table,
)
from cp2image.data.ingest.nuclei import Nuclei, crop_field, find_nuclei
from cp2image.data.ingest.streaming import IngestStream, measure_and_filter, resume_key
from cp2image.data.ingest.summary import IngestError, IngestSummary
from cp2image.data.ingest.tables import read_moa_table

log = logging.getLogger(__name__)


def ingest_fields_finding_nuclei(
    image_table: str | Path,
    out: str | Path,
    *,
    root: str | Path,
    moa_table: str | Path | None = None,
    config: FieldIngestConfig | None = None,
    segmentation=None,
    client=None,
    resume: bool = True,
) -> IngestSummary:
    """Find the nuclei of every available field, crop them, measure features, write a dataset at `out`.

    Features are always measured (there are no CellProfiler columns to carry).
    With a dask `client` (`cp2image.distributed`), each field is one task in each
    pass (find nuclei; crop + measure); without, fields run here one by one.
    With `resume` (default; `config.restart` or `resume=False` turn it off) a killed
    ingest run again with the same inputs and options continues after the last
    written field and ends with the dataset (and summary) an uninterrupted run gives.
    Raises `IngestError` naming the file for bad input; nothing is left behind then.
    """
    from cp2image.distributed import ClusterConfig, dask_client

    if client is None and config is not None and config.n_jobs not in (None, 0, 1):  # library call asking for workers
        from cp2image.features.measure import _resolve_jobs

        with dask_client(ClusterConfig(n_workers=_resolve_jobs(config.n_jobs))) as local:
            return ingest_fields_finding_nuclei(image_table, out, root=root, moa_table=moa_table, config=config,
                                                segmentation=segmentation, client=local, resume=resume)
    config = config or FieldIngestConfig()
    image_path, root, out = Path(image_table), Path(root), Path(out)
    if not root.is_dir():
        raise IngestError(f"{root}: image root folder not found (the Image_PathName_* columns are relative to it)")
    table = read_image_table(image_path)
    moa = field_moa(table, read_moa_table(moa_table) if moa_table is not None else None)
    summary = IngestSummary(out=out, source="fields")
    fields = _fields_to_ingest(table, moa, config, summary, image_path=image_path, root=root,
                               has_moa_table=moa_table is not None)
    shared = client.scatter(table, broadcast=True, hash=False) if client is not None else table  # sent once
    found = _find_all_nuclei(client, fields, shared, root, image_path, config, segmentation)
    summary.n_images = len(fields)
    summary.n_objects = sum(len(n) for n in found.values())
    key = resume_key({"image_table": image_path, "moa_table": moa_table},
                     {**asdict(config), "root": str(root.resolve()), "segmentation": repr(segmentation)})
    meta = _dataset_meta(image_path, moa_table, root, fields, summary, config)
    with IngestStream(out, summary.n_objects, crop_size=config.crop_size, meta=meta, key=key, summary=summary,
                      units=len(fields), unit_name="fields", overwrite=config.overwrite,
                      restart=config.restart or not resume) as stream:
        _crop_and_measure(client, stream, table, shared, fields, found, moa=moa, root=root, image_path=image_path,
                          config=config)
        if summary.n_written == 0:
            stream.abort()  # nothing worth resuming
            raise IngestError(f"{image_path}: {summary.n_objects} nuclei found in {len(fields)} fields, but none "
                              f"could be cropped ({summary.n_skipped_border} too close to the border) or kept")
    summary.n_features = len(meta["features"])
    log.info("ingested %d cells from %d fields (nuclei found) into %s", summary.n_written, len(fields), out)
    return summary


def _fields_to_ingest(table: pd.DataFrame, moa: pd.Series, config: FieldIngestConfig, summary: IngestSummary, *,
                      image_path: Path, root: Path, has_moa_table: bool) -> list[int]:
    """Image-table rows to ingest: --moa-only applied, fields without their files left out."""
    rows = np.arange(len(table))
    if config.moa_only:
        if not has_moa_table:
            raise IngestError("--moa-only needs an MoA table (--moa-table BBBC021_v1_moa.csv)")
        rows = rows[moa.notna().to_numpy()]
    fields = _available_fields(table, rows, root=root, image_path=image_path, strict=config.strict, summary=summary)
    if not fields:
        raise IngestError(f"{image_path}: none of its {len(rows)} fields has all three channel files under {root}"
                          + (f" ({len(summary.missing_files)} files missing from incomplete fields)"
                             if summary.missing_files else ""))
    return fields


def _available_fields(table: pd.DataFrame, rows: np.ndarray, *, root: Path, image_path: Path, strict: bool,
                      summary: IngestSummary) -> list[int]:
    """Rows whose three channel files exist; absent fields counted, incomplete ones reported (or raised)."""
    complete = []
    for row in rows:
        files = {f"Image_FileName_{c}": channel_path(table, int(row), c, root) for c in TABLE_CHANNELS.values()}
        missing = {col: p for col, p in files.items() if not p.is_file()}
        if not missing:
            complete.append(int(row))
        elif len(missing) == len(files):
            summary.n_fields_absent += 1
        else:
            names = ", ".join(f"{p} ({col})" for col, p in missing.items())
            if strict:
                raise IngestError(f"{image_path}: data row {row + 1} is incomplete: missing {names}; "
                                  "drop --strict to skip incomplete fields and ingest the rest")
            log.warning("skipping incomplete field (data row %d of %s): missing %s", row + 1, image_path, names)
            summary.missing_files.extend(str(p) for p in missing.values())
    return complete


def _find_all_nuclei(client, fields: list[int], shared, root: Path, image_path: Path, config: FieldIngestConfig,
                     segmentation) -> dict[int, Nuclei]:
    """Pass 1: the nuclei of every field (small: centres and areas), so the dataset's size is known."""
    from tqdm.auto import tqdm

    from cp2image.distributed import map_in_order

    items = ((row, shared, root, image_path, config.intensity, segmentation) for row in fields)
    return {item[0]: nuclei for item, nuclei in tqdm(map_in_order(client, _nuclei_task, items), total=len(fields),
                                                     desc="find nuclei", unit="field", disable=not config.progress)}


def _crop_and_measure(client, stream: IngestStream, table: pd.DataFrame, shared, fields: list[int],
                      found: dict[int, Nuclei], *, moa: pd.Series, root: Path, image_path: Path,
                      config: FieldIngestConfig) -> None:
    """Pass 2: crops and features, one field per unit; fields an earlier run wrote are skipped."""
    from tqdm.auto import tqdm

    from cp2image.distributed import map_in_order

    split_of = field_splits(table, fields, config)
    todo = [row for row in fields if str(row) not in stream.done]
    items = ((row, shared, root, image_path, found[row], config) for row in todo)
    for item, (crops, inside, features) in tqdm(map_in_order(client, _crop_measure_task, items), total=len(todo),
                                                desc="crop + measure", unit="field", disable=not config.progress):
        row = item[0]
        stream.summary.n_skipped_border += int((~inside).sum())
        cells = _cell_rows(table, row, found[row], inside, moa=moa, split=split_of[row])
        if len(crops):
            crops, cells = measure_and_filter(crops, cells, lambda images, n_jobs: features,  # measured in the task
                                              n_jobs=None, drop_failed=config.drop_failed, summary=stream.summary)
        stream.write(str(row), crops, cells)  # a field without crops is journaled as done, nothing written


def _dataset_meta(image_path: Path, moa_table, root: Path, fields: list[int], summary: IngestSummary,
                  config: FieldIngestConfig) -> dict:
    from cp2image.features import feature_names

    return {
        "features": feature_names(),
        "intensity": {**asdict(config.intensity), "scope": config.scope},
        "provenance": {
            "source": "fields-nuclei-found",
            "image_table": str(image_path),
            "moa_table": str(moa_table) if moa_table is not None else None,
            "root": str(root),
            "crop_size": config.crop_size,
            "nuclei": "cp2image.features.segmentation.label_nuclei on each field's DNA channel",
            "fields": len(fields),
            "missing_files": list(summary.missing_files),
            "moa_only": config.moa_only,
            "split_by": config.split_by,
            "seed": config.seed,
            "features": "cp2image.features.measure",
        },
    }


def _cell_rows(table: pd.DataFrame, row: int, nuclei: Nuclei, inside: np.ndarray, *, moa: pd.Series,
               split: str) -> pd.DataFrame:
    n = int(inside.sum())
    frame = pd.DataFrame({
        "Metadata_Plate": [str(table[PLATE_COLUMN].iat[row])] * n,
        "Metadata_Well": [str(table[WELL_COLUMN].iat[row])] * n,
        "Metadata_Site": np.full(n, field_site(table, row)),
        "Metadata_Compound": [str(table[COMPOUND_COLUMN].iat[row])] * n,
        "Metadata_Concentration": np.full(n, float(table[CONCENTRATION_COLUMN].iat[row])),
        "Metadata_MoA": [moa.iat[row]] * n,
        "Metadata_ObjectNumber": np.flatnonzero(inside) + 1,  # label number among the field's nuclei
        "Metadata_Center_X": nuclei.x[inside],
        "Metadata_Center_Y": nuclei.y[inside],
        "Metadata_Source_File": [str(table["Image_FileName_DAPI"].iat[row])] * n,
        "Metadata_Split": [split] * n,
    })
    if "ImageNumber" in table.columns:
        frame.insert(6, "Metadata_ImageNumber", int(table["ImageNumber"].iat[row]))
    if REPLICATE_COLUMN in table.columns:
        frame.insert(3, "Metadata_Replicate", table[REPLICATE_COLUMN].iat[row])
    return frame


def _nuclei_task(item: tuple) -> Nuclei:
    """Dask task, pass 1: read one field and find its nuclei (module level, so it pickles)."""
    row, table, root, image_path, intensity, segmentation = item
    return find_nuclei(read_field(table, row, root=root, image_path=image_path),
                       intensity=intensity, segmentation=segmentation)


def _crop_measure_task(item: tuple) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    """Dask task, pass 2: read one field, crop its nuclei and measure the crops → (crops, inside, features)."""
    row, table, root, image_path, nuclei, config = item
    from cp2image.features import measure

    raw = read_field(table, row, root=root, image_path=image_path)
    crops, inside = crop_field(raw, nuclei, crop_size=config.crop_size, intensity=config.intensity,
                               scope=config.scope)
    return crops, inside, (measure(crops) if len(crops) else None)

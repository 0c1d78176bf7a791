"""Raw BBBC021-style fields *without* a per-object table: find the nuclei, crop, measure.

The official BBBC021 download is TIFF fields plus the image and MoA tables; it has
no CellProfiler per-object table. `ingest_fields_finding_nuclei` therefore finds the
nuclei itself, with the nucleus step of `cp2image.features.segment_batch`
(`label_nuclei`: Gaussian smoothing, Otsu threshold, hole filling, declumping of
touching nuclei, debris under ``min_nucleus_area`` removed) run on the whole field's
DNA channel scaled to uint8 like the crops. That is the same segmentation that
`measure` applies to every crop, real or simulated, so a nucleus found here is the
one the crop's features describe.

Per field, two pure functions (no I/O, no shared state, so a scheduler can map
them over fields):

- `find_nuclei(raw, ...)` → centres (centroid of each nucleus mask, 0-based x/y
  pixels, as CellProfiler's ``Location_Center_X/Y``) and areas;
- `crop_field(raw, centres, ...)` → uint8 crops centred on them.

Border handling: a crop window must lie wholly inside the field (the window is
centred on the rounded centroid, exactly as for ``--objects``); cells whose window
would leave the field are skipped and counted. That also drops every nucleus cut by
the field edge, because its centroid lies closer to the edge than half a crop
(34 px at the default 68) for any nucleus under ~68 px across.

Files: a field whose three channel files are all absent was not downloaded and is
skipped (counted); a field with some but not all files is incomplete: it is skipped
and each missing file is reported by name, or, with ``strict``, it is an error.
The dataset is written in two passes (nuclei first, then crops and features) so its
size is known before anything is written.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from cp2image.channels import CHANNELS
from cp2image.data.dataset import DatasetWriter
from cp2image.data.ingest_common import (
    ControlRows,
    IngestError,
    IngestSummary,
    annotate_moa,
    assign_splits,
    measure_and_filter,
    read_moa_table,
    split_counts,
)
from cp2image.data.ingest_fields import (
    COMPOUND_COLUMN,
    CONCENTRATION_COLUMN,
    PLATE_COLUMN,
    REPLICATE_COLUMN,
    TABLE_CHANNELS,
    WELL_COLUMN,
    FieldIngestConfig,
    _channel_path,
    _site,
    crop_windows,
    read_field,
    read_image_table,
)
from cp2image.data.intensity import IntensityConfig, apply_limits, batch_to_uint8, channel_limits

log = logging.getLogger(__name__)


@dataclass
class Nuclei:
    """Nuclei found in one field: centroid (x = column, y = row; 0-based px) and area (px)."""

    x: np.ndarray
    y: np.ndarray
    area: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def find_nuclei(raw: np.ndarray, *, intensity: IntensityConfig | None = None, segmentation=None) -> Nuclei:
    """Every nucleus of a raw field (3, H, W) in `CHANNELS` order (only DNA is used).

    The DNA plane is scaled to uint8 by `intensity` over the whole field (default:
    divided by its maximum), then labelled by `cp2image.features.segmentation.label_nuclei`
    with `segmentation` (a `SegmentationConfig`; default settings).
    """
    from cp2image.features.segmentation import label_nuclei

    dna = np.asarray(raw)[CHANNELS.index("DNA")]
    lo, hi = channel_limits(dna[None], intensity or IntensityConfig())
    dna8 = apply_limits(dna[None, None], lo, hi, channel_axis=1)[0, 0]  # (H, W) uint8
    labels, n = label_nuclei(dna8[None].astype(np.float32) / 255.0, config=segmentation)
    labels = labels[0]
    if n == 0:
        empty = np.zeros(0)
        return Nuclei(empty, empty.copy(), empty.copy())
    ids = np.arange(1, n + 1)
    centres = np.asarray(ndi.center_of_mass(np.ones_like(labels, dtype=np.float64), labels, ids))  # (n, 2) y, x
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.float64)
    return Nuclei(x=centres[:, 1], y=centres[:, 0], area=area)


def crop_field(
    raw: np.ndarray, nuclei: Nuclei, *, crop_size: int, intensity: IntensityConfig, scope: str = "field",
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 crops (n, 3, s, s) at the nuclei whose window fits in the field, and that mask.

    `scope="field"` scales intensities by limits of the whole field (default),
    `"crop"` by each crop's own.
    """
    raw = np.asarray(raw)
    x0, y0, inside, _ = crop_windows(nuclei.x, nuclei.y, height=raw.shape[1], width=raw.shape[2],
                                     crop_size=crop_size)
    if not inside.any():
        return np.zeros((0, len(CHANNELS), crop_size, crop_size), dtype=np.uint8), inside
    s = crop_size
    stack = np.stack([raw[:, y:y + s, x:x + s] for x, y in zip(x0[inside], y0[inside])])  # (n, 3, s, s)
    if scope == "field":
        lo, hi = channel_limits(raw, intensity)
        return apply_limits(stack, lo, hi, channel_axis=1), inside
    return batch_to_uint8(stack, intensity), inside


# ----------------------------------------------------------------------------- fields


def _field_files(table: pd.DataFrame, row: int, root: Path) -> dict[str, Path]:
    return {f"Image_FileName_{c}": _channel_path(table, row, c, root) for c in TABLE_CHANNELS.values()}


def _available_fields(table: pd.DataFrame, rows: np.ndarray, *, root: Path, image_path: Path, strict: bool,
                      summary: IngestSummary) -> list[int]:
    """Rows whose three channel files exist; absent fields counted, incomplete ones reported (or raised)."""
    complete = []
    for row in rows:
        files = _field_files(table, int(row), root)
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


def _cell_rows(table: pd.DataFrame, row: int, nuclei: Nuclei, inside: np.ndarray, *, moa: pd.Series,
               split: str) -> pd.DataFrame:
    n = int(inside.sum())
    frame = pd.DataFrame({
        "Metadata_Plate": [str(table[PLATE_COLUMN].iat[row])] * n,
        "Metadata_Well": [str(table[WELL_COLUMN].iat[row])] * n,
        "Metadata_Site": np.full(n, _site(table, row)),
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
    With `resume` (default) every written field is journaled, and a killed ingest
    run again with the same inputs and options continues after the last one and
    ends with the dataset an uninterrupted run writes (the summary's skip and
    failure counts then cover only this run's fields).
    Raises `IngestError` naming the file for bad input; nothing is left behind then.
    """
    from cp2image.distributed import ClusterConfig, dask_client, map_in_order

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
    moa = (annotate_moa(table[COMPOUND_COLUMN], table[CONCENTRATION_COLUMN], read_moa_table(moa_table))
           if moa_table is not None else pd.Series(np.nan, index=table.index, dtype=object))
    summary = IngestSummary(out=out, source="fields")
    rows = np.arange(len(table))
    if config.moa_only:
        if moa_table is None:
            raise IngestError("--moa-only needs an MoA table (--moa-table BBBC021_v1_moa.csv)")
        rows = rows[moa.notna().to_numpy()]
    fields = _available_fields(table, rows, root=root, image_path=image_path, strict=config.strict, summary=summary)
    if not fields:
        raise IngestError(f"{image_path}: none of its {len(rows)} fields has all three channel files under {root}"
                          + (f" ({len(summary.missing_files)} files missing from incomplete fields)"
                             if summary.missing_files else ""))

    from tqdm.auto import tqdm

    # pass 1: nuclei of every field (small: centres and areas), so the dataset's size is known
    found: dict[int, Nuclei] = {}
    shared = client.scatter(table, broadcast=True, hash=False) if client is not None else table  # sent once
    items = ((row, shared, root, image_path, config.intensity, segmentation) for row in fields)
    for item, nuclei in tqdm(map_in_order(client, _nuclei_task, items), total=len(fields), desc="find nuclei",
                             unit="field", disable=not config.progress):
        found[item[0]] = nuclei
    summary.n_images = len(fields)
    summary.n_objects = sum(len(n) for n in found.values())

    meta_fields = table.iloc[fields]
    field_meta = pd.DataFrame({
        "Metadata_Plate": meta_fields[PLATE_COLUMN].astype(str).to_numpy(),
        "Metadata_Well": meta_fields[WELL_COLUMN].astype(str).to_numpy(),
        "Metadata_Compound": meta_fields[COMPOUND_COLUMN].astype(str).to_numpy(),
        "Metadata_Concentration": meta_fields[CONCENTRATION_COLUMN].to_numpy(),
    }, index=fields)
    split_of = dict(zip(fields, assign_splits(field_meta, by=config.split_by, seed=config.seed).tolist()))

    from cp2image.features import feature_names

    meta = {
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
    controls = ControlRows()
    capacity = max(summary.n_objects, 1)
    key = _resume_key(image_path, moa_table, root, config, segmentation)
    if not resume:
        shutil.rmtree(out.parent / f".{out.name}.partial", ignore_errors=True)
    # pass 2: crops and features, one field at a time
    with DatasetWriter(out, capacity, crop_size=config.crop_size, meta=meta, overwrite=config.overwrite,
                       resume_key=key) as writer:
        done = set(writer.done)
        if done:  # earlier fields of a killed run: their control rows and counts come back from disk
            log.warning("resuming %s: %d of %d fields already written", out, len(done), len(fields))
            earlier = writer.read_rows(filters=[("Metadata_Compound", "==", controls.control)])
            if len(earlier):
                controls.add(earlier)
            summary.n_written = writer.count
            for name, count in split_counts(writer.read_rows(["Metadata_Split"])["Metadata_Split"]).items():
                summary.splits[name] = count
        items = ((row, shared, root, image_path, found[row], config) for row in fields if str(row) not in done)
        for item, (crops, inside, features) in tqdm(map_in_order(client, _crop_measure_task, items),
                                                    total=len(fields), desc="crop + measure", unit="field",
                                                    disable=not config.progress):
            row = item[0]
            summary.n_skipped_border += int((~inside).sum())
            if not len(crops):
                writer.append(crops, _cell_rows(table, row, found[row], inside, moa=moa, split=split_of[row]),
                              unit=str(row))  # journaled as done, nothing written
                continue
            cells = _cell_rows(table, row, found[row], inside, moa=moa, split=split_of[row])
            crops, cells = measure_and_filter(crops, cells, lambda images, n_jobs: features,  # measured in the task
                                              n_jobs=None, drop_failed=config.drop_failed, summary=summary)
            writer.append(crops, cells, unit=str(row))
            controls.add(cells)
            summary.n_written += len(cells)
            for name, count in split_counts(cells["Metadata_Split"]).items():
                summary.splits[name] = summary.splits.get(name, 0) + count
        if summary.n_written == 0:
            writer.abort()  # nothing worth resuming
            raise IngestError(f"{image_path}: {summary.n_objects} nuclei found in {len(fields)} fields, but none "
                              f"could be cropped ({summary.n_skipped_border} too close to the border) or kept")
        writer.meta["normalisation"] = controls.normalisation()
    summary.n_features = len(meta["features"])
    log.info("ingested %d cells from %d fields (nuclei found) into %s", summary.n_written, len(fields), out)
    return summary


def _resume_key(image_path: Path, moa_table, root: Path, config: FieldIngestConfig, segmentation) -> str:
    """Digest of everything that determines the dataset: the tables' bytes, the root and the options."""
    import hashlib
    import json

    from cp2image import __version__
    from cp2image.checksums import file_digest

    options = {k: v for k, v in asdict(config).items() if k not in ("progress", "overwrite", "n_jobs")}
    text = json.dumps({"image_table": file_digest(image_path), "root": str(root.resolve()),
                       "moa_table": file_digest(Path(moa_table)) if moa_table is not None else None,
                       "options": options, "segmentation": repr(segmentation), "version": __version__},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


__all__ = ["Nuclei", "find_nuclei", "crop_field", "ingest_fields_finding_nuclei"]

"""Ready-made single-cell crops (raw 16-bit) → a cp2image dataset with measured features.

Two input forms, both holding crops already centred on a nucleus:

- an ``.npz`` archive like ``bbbc021_cells_68x68.npz``: ``images`` (N, H, W, 3)
  or (N, 3, H, W) raw intensities plus one 1-D array per metadata field
  (``plate``, ``well``, ``site``, ``compound``, ``concentration``, ``moa``,
  ``replicate``, ...), read with ``allow_pickle=False``;
- a folder of ``.npy`` crops, one per cell, plus a metadata CSV whose
  ``crop_file`` (or ``file``) column names each crop relative to the folder.

The crops' channels may be stored in any order: ``channel_order`` names them
in input order (``("DNA", "Actin", "Tubulin")`` for the shared BBBC021 crop
archives, which store DAPI, F-actin, β-tubulin) and they are rearranged into
cp2image's order (`cp2image.channels.CHANNELS`: DNA, Tubulin, Actin) before
anything else happens. The order given is recorded in the dataset's provenance.
Several sources (``combine_sources``) become one dataset, with one
``Metadata_Crop_Source`` column naming each crop's input.

Metadata names map to ``Metadata_*`` (``plate`` → ``Metadata_Plate``, ``moa`` →
``Metadata_MoA``, ...; names that already start with ``Metadata_`` are kept).
``Metadata_ReplicateID`` is ``<plate>/<well>``: the replicate well, the unit that
cell profiles are aggregated over. Intensities become uint8 per crop and channel
(``max`` by default, as in the original work); features are then measured on
the uint8 crops by `cp2image.features.measure`, so real crops get exactly the
feature set the models and the simulator use. Crops are processed in batches
and streamed into a `DatasetWriter`.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.checksums import file_digest
from cp2image.channels import CHANNELS
from cp2image.data.columns import feature_columns
from cp2image.data.dataset import DatasetWriter
from cp2image.data.ingest_common import (
    IngestError,
    ControlRows,
    IngestSummary,
    SplitBy,
    measure_and_filter,
    replicate_values,
    annotate_moa,
    assign_splits,
    numeric_column,
    read_csv,
    read_moa_table,
    split_counts,
)
from cp2image.data.intensity import IntensityConfig, batch_to_uint8

log = logging.getLogger(__name__)

# lower-case metadata names (as in the BBBC021 crops archive) → dataset columns
METADATA_NAMES: dict[str, str] = {
    "plate": "Metadata_Plate",
    "well": "Metadata_Well",
    "site": "Metadata_Site",
    "replicate": "Metadata_Replicate",
    "compound": "Metadata_Compound",
    "concentration": "Metadata_Concentration",
    "moa": "Metadata_MoA",
    "cell_index": "Metadata_CellIndex",
    "crop_file": "Metadata_Crop_File",
    "source_dapi_file": "Metadata_Source_File",
}
REQUIRED: tuple[str, ...] = ("Metadata_Plate", "Metadata_Well", "Metadata_Compound", "Metadata_Concentration")
FILE_COLUMNS: tuple[str, ...] = ("crop_file", "file", "Metadata_Crop_File")
SITE_TEXT = re.compile(r"^\s*s?(\d+)\s*$", re.IGNORECASE)
SOURCE_COLUMN = "Metadata_Crop_Source"  # which input a crop came from (several sources only)

# Accepted spellings (case-insensitive) of each channel: cp2image's names plus the stains
# BBBC021 and CellProfiler pipelines name them after.
CHANNEL_ALIASES: dict[str, str] = {
    "dna": "DNA", "dapi": "DNA", "hoechst": "DNA",
    "tubulin": "Tubulin", "β-tubulin": "Tubulin", "beta-tubulin": "Tubulin",
    "actin": "Actin", "f-actin": "Actin", "phalloidin": "Actin",
}


def parse_channel_order(value: str | Sequence[str]) -> tuple[str, ...]:
    """The input's channels in order, as cp2image channel names.

    `value` is a comma-separated string (``"DNA,Actin,Tubulin"``) or a sequence
    of names. Every channel of `CHANNELS` must be named exactly once; stain
    names (DAPI, F-actin, β-tubulin) are accepted. A wrong count, an unknown or
    a repeated name raises `ValueError` naming it, because a silently swapped
    channel poisons every feature and model trained on the data.
    """
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    expected = ", ".join(CHANNELS)
    if len(names) != len(CHANNELS) or any(not n for n in names):
        raise ValueError(
            f"channel order {value!r} must name {len(CHANNELS)} channels separated by commas, "
            f"each of {expected} once in the order the input stores them (e.g. DNA,Actin,Tubulin)"
        )
    order = []
    for name in names:
        channel = CHANNEL_ALIASES.get(name.lower())
        if channel is None:
            raise ValueError(f"channel order {value!r}: unknown channel {name!r}; use {expected} "
                             "(or the stains DAPI, β-tubulin, F-actin)")
        if channel in order:
            raise ValueError(f"channel order {value!r}: {channel} is named twice; each of {expected} must appear once")
        order.append(channel)
    return tuple(order)


def channel_permutation(order: Sequence[str]) -> list[int]:
    """Indices that take input channels in `order` to `CHANNELS` order: `raw[:, perm]`."""
    order = parse_channel_order(order)
    return [order.index(c) for c in CHANNELS]


@dataclass
class CropIngestConfig:
    """Options of `ingest_crops`."""

    intensity: IntensityConfig = field(default_factory=IntensityConfig)  # per-crop max or percentile
    channel_order: tuple[str, ...] = CHANNELS  # the input's channels in stored order (names, see CHANNEL_ALIASES)
    split_by: SplitBy = "plate"  # Metadata_Split groups: "plate" (default here) or "well"
    seed: int = 0  # split shuffling and --subset sampling
    subset: int | None = None  # keep this many crops, sampled with `seed` (quick runs, tests)
    moa_only: bool = False  # keep only crops with an MoA annotation
    measure: bool = True  # measure CellProfiler-style features on the uint8 crops
    drop_failed: bool = False  # drop crops whose segmentation failed (else kept with NaN features + flag)
    n_jobs: int | None = None  # worker processes for measure (None = in process, -1 = all cores)
    batch_size: int = 512  # crops normalised, measured and written at a time
    progress: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.channel_order = parse_channel_order(self.channel_order)
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"subset must be a positive number of crops, got {self.subset}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")


@dataclass
class CropSource:
    """Crops and their metadata; `load(indices)` returns raw (n, 3, H, W) crops."""

    description: str  # where the crops came from (for errors and provenance)
    metadata: pd.DataFrame  # one row per crop, Metadata_* columns
    load: Callable[[np.ndarray], np.ndarray]
    crop_size: int
    provenance: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- metadata


def _metadata_frame(columns: dict[str, np.ndarray] | pd.DataFrame, *, where: str) -> pd.DataFrame:
    """Rename metadata to Metadata_* and check types; errors name `where` and the column."""
    frame = pd.DataFrame({k: np.asarray(v) for k, v in columns.items()}) if isinstance(columns, dict) else columns
    renamed = {}
    for col in frame.columns:
        if col in METADATA_NAMES:
            renamed[col] = METADATA_NAMES[col]
        elif str(col).startswith("Metadata_"):
            renamed[col] = col
        elif str(col).lower() in METADATA_NAMES:
            renamed[col] = METADATA_NAMES[str(col).lower()]
    frame = frame[list(renamed)].rename(columns=renamed)
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise IngestError(f"{where}: metadata given twice under different names: {dup}")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        wanted = {v: k for k, v in METADATA_NAMES.items()}
        raise IngestError(
            f"{where}: metadata lacks {[wanted.get(c, c) for c in missing]} (or {missing}); "
            "every crop needs plate, well, compound and concentration (µM)"
        )
    frame = frame.copy()
    for col in ("Metadata_Plate", "Metadata_Well", "Metadata_Compound"):
        if frame[col].isna().any() or (frame[col].astype(str).str.strip() == "").any():
            raise IngestError(f"{where}: {col} is empty for some crops; every crop needs plate, well and compound")
        frame[col] = frame[col].astype(str)
    if "Metadata_MoA" in frame.columns:  # keep missing MoAs missing (not the text "nan")
        moa = frame["Metadata_MoA"]
        frame["Metadata_MoA"] = moa.where(moa.isna() | (moa.astype(str).str.strip() == ""), moa.astype(str))
        frame.loc[frame["Metadata_MoA"].astype(str).str.strip() == "", "Metadata_MoA"] = None
    if "Metadata_Replicate" in frame.columns:
        frame["Metadata_Replicate"] = replicate_values(frame["Metadata_Replicate"])
    frame["Metadata_Concentration"] = numeric_column(
        frame["Metadata_Concentration"], path=Path(where), column="concentration"
    )
    if "Metadata_Site" in frame.columns:
        frame["Metadata_Site"] = [_site_number(v) for v in frame["Metadata_Site"]]
    frame["Metadata_ReplicateID"] = frame["Metadata_Plate"] + "/" + frame["Metadata_Well"]
    return frame.reset_index(drop=True)


def _site_number(value: object) -> float:
    """BBBC021 sites are written `s1`..`s4`; store the number."""
    match = SITE_TEXT.match(str(value))
    return float(match.group(1)) if match else np.nan


def _to_chw(raw: np.ndarray, *, where: str) -> np.ndarray:
    """(n, H, W, 3) or (n, 3, H, W) → (n, 3, H, W); anything else is an error naming `where`."""
    if raw.ndim != 4:
        raise IngestError(f"{where}: expected crops of shape (N, H, W, 3) or (N, 3, H, W), got {raw.shape}")
    n_ch = len(CHANNELS)
    if raw.shape[-1] == n_ch and raw.shape[1] != n_ch:
        raw = np.moveaxis(raw, -1, 1)
    elif raw.shape[1] != n_ch:
        raise IngestError(
            f"{where}: expected {n_ch} channels ({', '.join(CHANNELS)}) first or last, got shape {raw.shape}"
        )
    if raw.shape[2] != raw.shape[3]:
        raise IngestError(f"{where}: crops must be square, got {raw.shape[2]}×{raw.shape[3]}")
    if raw.dtype.kind not in "ui":
        raise IngestError(f"{where}: expected raw integer intensities (e.g. uint16), got dtype {raw.dtype}")
    return raw


# ----------------------------------------------------------------------------- sources


def npz_source(path: str | Path) -> CropSource:
    """Crops from an `.npz` archive with an `images` array and 1-D metadata arrays."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: file not found")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise IngestError(f"{path}: cannot read as .npz ({err})") from err
    with archive:
        if "images" not in archive.files:
            raise IngestError(f"{path}: no 'images' array (found {archive.files})")
        try:
            images = _to_chw(archive["images"], where=f"{path} [images]")
            columns = {k: archive[k] for k in archive.files if k != "images"}
        except ValueError as err:  # object arrays refuse to load without pickle
            if isinstance(err, IngestError):
                raise
            raise IngestError(f"{path}: an array needs pickle to load ({err}); store plain strings/numbers") from err
    bad = [k for k, v in columns.items() if v.ndim != 1 or len(v) != len(images)]
    if bad:
        raise IngestError(f"{path}: metadata array(s) {bad} must be 1-D with one entry per crop ({len(images)})")
    metadata = _metadata_frame(columns, where=str(path))
    return CropSource(
        description=str(path),
        metadata=metadata,
        load=lambda idx: images[idx],
        crop_size=int(images.shape[-1]),
        provenance={"source": "crops-npz", "path": str(path), "sha256": file_digest(path)},
    )


def folder_source(folder: str | Path, metadata_csv: str | Path) -> CropSource:
    """Crops from a folder of `.npy` files listed in a metadata CSV (column crop_file or file)."""
    folder, metadata_csv = Path(folder), Path(metadata_csv)
    if not folder.is_dir():
        raise IngestError(f"{folder}: crop folder not found")
    table = read_csv(metadata_csv)
    file_col = next((c for c in FILE_COLUMNS if c in table.columns), None)
    if file_col is None:
        raise IngestError(f"{metadata_csv}: no crop file column; add one of {list(FILE_COLUMNS)}")
    files = [folder / str(name) for name in table[file_col]]
    missing = [(i, f) for i, f in enumerate(files) if not f.is_file()]
    if missing:
        i, f = missing[0]
        raise IngestError(f"{metadata_csv}: column {file_col}, data row {i + 1}: crop {f} not found "
                          f"({len(missing)} missing in all)")
    if file_col != "Metadata_Crop_File":
        table = table.rename(columns={file_col: "crop_file"})
    metadata = _metadata_frame(table, where=str(metadata_csv))
    first = _read_npy(files[0], column=file_col)

    def load(idx: np.ndarray) -> np.ndarray:
        crops = []
        for i in np.asarray(idx):
            crop = _read_npy(files[i], column=file_col)
            if crop.shape != first.shape or crop.dtype != first.dtype:
                raise IngestError(
                    f"{files[i]} ({file_col} of {metadata_csv}): shape {crop.shape} {crop.dtype} differs from "
                    f"the first crop's {first.shape} {first.dtype}"
                )
            crops.append(crop)
        return _to_chw(np.stack(crops), where=f"{files[idx[0]]} ({file_col} of {metadata_csv})")

    probe = _to_chw(first[None], where=f"{files[0]} ({file_col} of {metadata_csv})")
    return CropSource(
        description=f"{folder} + {metadata_csv}",
        metadata=metadata,
        load=load,
        crop_size=int(probe.shape[-1]),
        provenance={"source": "crops-folder", "folder": str(folder), "metadata": str(metadata_csv)},
    )


def combine_sources(sources: Sequence[CropSource]) -> CropSource:
    """Several crop sources as one, in the order given; crops keep their own metadata.

    Each crop's input is named in `SOURCE_COLUMN` (the file name, or the full
    description when two inputs share a file name). Metadata columns that only
    some inputs have are empty for the others. Crop sizes must agree, and a crop
    (same plate and crop file) listed by two inputs is refused rather than
    silently counted twice.
    """
    sources = list(sources)
    if not sources:
        raise IngestError("no crop source given")
    if len(sources) == 1:
        return sources[0]
    sizes = {s.crop_size for s in sources}
    if len(sizes) > 1:
        detail = ", ".join(f"{s.description}: {s.crop_size}" for s in sources)
        raise IngestError(f"crop sizes differ between inputs ({detail}); ingest them into separate datasets")
    short = [Path(s.description).name for s in sources]
    labels = short if len(set(short)) == len(short) else [s.description for s in sources]
    frames = [s.metadata.assign(**{SOURCE_COLUMN: label}) for s, label in zip(sources, labels)]
    metadata = pd.concat(frames, ignore_index=True)
    if "Metadata_Crop_File" in metadata.columns:
        key = metadata[["Metadata_Plate", "Metadata_Crop_File"]]
        dup = key.duplicated(keep=False) & key["Metadata_Crop_File"].notna()
        if dup.any():
            row = metadata[dup].iloc[0]
            same = (key["Metadata_Crop_File"] == row["Metadata_Crop_File"]) & (key["Metadata_Plate"] == row["Metadata_Plate"])
            owners = list(dict.fromkeys(metadata.loc[same, SOURCE_COLUMN]))  # inputs in the order given
            raise IngestError(
                f"crop {row['Metadata_Crop_File']} of plate {row['Metadata_Plate']} is listed more than once "
                f"(in {', '.join(owners)}); {int(dup.sum())} rows are duplicates — remove them from one input"
            )
    offsets = np.cumsum([0] + [len(s.metadata) for s in sources])

    def load(idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx)
        which = np.searchsorted(offsets, idx, side="right") - 1  # input of each requested crop
        parts = {int(k): sources[k].load(idx[which == k] - offsets[k]) for k in np.unique(which)}
        dtype = np.result_type(*(p.dtype for p in parts.values()))
        first = next(iter(parts.values()))
        out = np.empty((len(idx), *first.shape[1:]), dtype=dtype)  # (n, 3, H, W)
        for k, crops in parts.items():
            out[which == k] = crops
        return out

    return CropSource(
        description=" + ".join(s.description for s in sources),
        metadata=metadata,
        load=load,
        crop_size=sizes.pop(),
        provenance={"source": "crops-combined", "inputs": [s.provenance for s in sources]},
    )


def _read_npy(path: Path, *, column: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise IngestError(f"{path} ({column}): unreadable .npy crop ({err})") from err


# ----------------------------------------------------------------------------- main


def ingest_crops(
    source: CropSource,
    out: str | Path,
    *,
    moa_table: str | Path | None = None,
    config: CropIngestConfig | None = None,
    client=None,
) -> IngestSummary:
    """Normalise, measure and write the crops of `source` as a dataset at `out`.

    With a dask `client` (`cp2image.distributed`), each batch's crops are measured
    as dask tasks (chunks of crops) on that cluster.
    """
    config = config or CropIngestConfig()
    out = Path(out)
    cells = source.metadata.copy()
    if moa_table is not None:
        from_table = annotate_moa(cells["Metadata_Compound"], cells["Metadata_Concentration"], read_moa_table(moa_table))
        if "Metadata_MoA" in cells.columns:  # the table wins; the crops' own MoA fills its gaps
            given = cells["Metadata_MoA"]
            disagree = int((from_table.notna() & given.notna() & (from_table != given)).sum())
            if disagree:
                log.warning("%s: %d crops have an MoA that differs from %s; using the table's", source.description,
                            disagree, moa_table)
            from_table = from_table.fillna(given)
        cells["Metadata_MoA"] = from_table
    summary = IngestSummary(out=out, source="crops", n_objects=len(cells))
    index = np.arange(len(cells))
    if config.moa_only:
        if "Metadata_MoA" not in cells.columns:
            raise IngestError(f"{source.description}: --moa-only needs an moa column or --moa-table")
        index = index[cells["Metadata_MoA"].notna().to_numpy()]
        summary.n_skipped_moa = len(cells) - len(index)
    if config.subset is not None and config.subset < len(index):
        rng = np.random.default_rng(config.seed)
        index = np.sort(rng.choice(index, size=config.subset, replace=False))
    if len(index) == 0:
        raise IngestError(f"{source.description}: no crops left to ingest")
    cells = cells.iloc[index].reset_index(drop=True)
    cells["Metadata_Split"] = assign_splits(cells, by=config.split_by, seed=config.seed)
    summary.n_images = len(index)

    meta = {
        "intensity": {**asdict(config.intensity), "scope": "crop"},
        "provenance": {
            **source.provenance,
            "channel_order": list(config.channel_order),  # the input's channels; stored as CHANNELS
            "moa_table": str(moa_table) if moa_table is not None else None,
            "subset": config.subset,
            "moa_only": config.moa_only,
            "split_by": config.split_by,
            "seed": config.seed,
            "features": "cp2image.features.measure" if config.measure else None,
            "drop_failed": config.drop_failed,
        },
    }
    measure = _measure_fn() if config.measure else None
    if measure is not None and client is not None:
        measure = partial(measure, client=client)
    from tqdm.auto import tqdm

    permutation = channel_permutation(config.channel_order)
    controls = ControlRows()
    with DatasetWriter(out, len(index), crop_size=source.crop_size, meta=meta, overwrite=config.overwrite) as writer:
        starts = range(0, len(index), config.batch_size)
        for start in tqdm(starts, desc="ingest", unit="batch", disable=not config.progress):
            stop = min(start + config.batch_size, len(index))
            raw = source.load(index[start:stop])[:, permutation]  # input order → CHANNELS order
            images = batch_to_uint8(raw, config.intensity)
            batch = cells.iloc[start:stop].reset_index(drop=True)
            if measure is not None:
                images, batch = measure_and_filter(images, batch, measure, n_jobs=config.n_jobs,
                                                   drop_failed=config.drop_failed, summary=summary)
            if "features" not in writer.meta:  # model order = measure()'s column order
                writer.meta["features"] = feature_columns(batch)
            writer.append(images, batch)
            controls.add(batch)
            summary.n_written += len(batch)
            for name, count in split_counts(batch["Metadata_Split"]).items():
                summary.splits[name] = summary.splits.get(name, 0) + count
        if summary.n_written == 0:
            raise IngestError(f"{source.description}: every crop failed segmentation; nothing to write")
        # inside the block: the dataset appears with its normalisation statistics or not at all
        writer.meta["normalisation"] = controls.normalisation()
    summary.n_features = len(writer.meta.get("features") or [])
    log.info("ingested %d crops from %s into %s", summary.n_written, source.description, out)
    return summary


def _measure_fn() -> Callable[..., pd.DataFrame]:
    from cp2image.features import measure

    return measure


__all__ = [
    "CropIngestConfig",
    "CropSource",
    "npz_source",
    "folder_source",
    "combine_sources",
    "ingest_crops",
    "parse_channel_order",
    "channel_permutation",
]

"""Where ready-made crops come from: an `.npz` archive, a folder of `.npy` files, or several.

Each source is a `CropSource`: the crops' metadata (one row per crop, renamed to
``Metadata_*``) and a `load(indices)` that returns raw (n, 3, H, W) crops, so
`ingest_crops` reads one batch at a time whatever the input.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.channels import CHANNELS
from cp2image.checksums import file_digest
from cp2image.data.ingest.summary import IngestError
from cp2image.data.ingest.tables import numeric_column, read_csv, replicate_values

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

@dataclass
class CropSource:
    """Crops and their metadata; `load(indices)` returns raw (n, 3, H, W) crops."""

    description: str  # where the crops came from (for errors and provenance)
    metadata: pd.DataFrame  # one row per crop, Metadata_* columns
    load: Callable[[np.ndarray], np.ndarray]
    crop_size: int
    provenance: dict = field(default_factory=dict)
    fingerprint: str = ""  # changes whenever the crops or their metadata do (the resume key uses it)


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
    digest = file_digest(path)
    return CropSource(
        description=str(path),
        metadata=metadata,
        load=lambda idx: images[idx],
        crop_size=int(images.shape[-1]),
        provenance={"source": "crops-npz", "path": str(path), "sha256": digest},
        fingerprint=digest,
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
        fingerprint=_folder_fingerprint(metadata_csv, files),
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
        fingerprint="+".join(s.fingerprint for s in sources),
    )


def _folder_fingerprint(metadata_csv: Path, files: list[Path]) -> str:
    """Digest of the metadata CSV and each crop file's name, size and modification time (no re-reading)."""
    h = hashlib.sha256(file_digest(metadata_csv).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _read_npy(path: Path, *, column: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise IngestError(f"{path} ({column}): unreadable .npy crop ({err})") from err



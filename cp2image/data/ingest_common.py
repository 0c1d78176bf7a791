"""Pieces both ingestion paths share: the error type, the summary, MoA look-up and splits.

Kept apart from `ingest_fields` (TIFF fields + CellProfiler tables) and
`ingest_crops` (ready-made crops) so that neither imports the other.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cp2image.data.columns import FAILED_COLUMN, feature_columns
from cp2image.data.dataset import DatasetError
from cp2image.data.splits import assign_splits_by_well

log = logging.getLogger(__name__)

SplitBy = Literal["well", "plate"]
SPLIT_BY: tuple[str, ...] = ("well", "plate")
MOA_COLUMNS: tuple[str, ...] = ("compound", "concentration", "moa")


class IngestError(DatasetError):
    """Input to `cp2image ingest` is unusable; the message names the file, column and fix."""


@dataclass
class IngestSummary:
    """What an ingestion run read, wrote and skipped (printed by the CLI)."""

    out: Path
    source: str  # "fields" or "crops"
    n_images: int = 0  # fields of view (fields) or crops (crops) read
    n_objects: int = 0  # candidate cells (object rows / crops) before filtering
    n_written: int = 0
    n_skipped_border: int = 0  # crop window would leave the field
    n_skipped_no_centre: int = 0  # NaN nucleus centre
    n_skipped_moa: int = 0  # dropped by --moa-only (no MoA annotation)
    n_unmatched_related: int = 0  # nuclei without a row in a related table (Cells.csv, ...): NaN features
    n_fields_absent: int = 0  # fields (no --objects) listed in the image table with no file under --root
    missing_files: list[str] = field(default_factory=list)  # channel files of incomplete fields (skipped)
    n_features: int = 0
    n_segmentation_failed: int | None = None  # only when features were measured
    n_measured: int = 0  # cells whose features were measured (before any --drop-failed)
    n_dropped_failed: int = 0  # cells dropped: segmentation failed or a feature undefined (--drop-failed)
    splits: dict[str, int] = field(default_factory=dict)

    @property
    def segmentation_success_rate(self) -> float | None:
        if self.n_segmentation_failed is None or self.n_measured == 0:
            return None
        return 1.0 - self.n_segmentation_failed / self.n_measured

    def lines(self) -> list[str]:
        unit = "fields of view" if self.source == "fields" else "crops"
        out = [
            f"wrote {self.n_written} cells to {self.out}",
            f"  read {self.n_images} {unit}, {self.n_objects} candidate cells",
        ]
        if self.n_fields_absent:
            out.append(f"  {self.n_fields_absent} fields listed in the image table have no files under the root "
                       "(not downloaded): skipped")
        for path in self.missing_files:
            out.append(f"  skipped an incomplete field: {path} is missing (--strict makes this an error)")
        if self.source == "fields":
            out.append(f"  skipped {self.n_skipped_border} cells too close to the field border")
            out.append(f"  skipped {self.n_skipped_no_centre} cells without a nucleus centre (NaN)")
        if self.n_unmatched_related:
            out.append(f"  {self.n_unmatched_related} cells had no row in a related objects table (NaN features)")
        if self.n_skipped_moa:
            out.append(f"  skipped {self.n_skipped_moa} cells without an MoA annotation (--moa-only)")
        out.append(f"  {self.n_features} feature columns")
        rate = self.segmentation_success_rate
        if rate is not None:
            out.append(
                f"  segmentation succeeded on {self.n_measured - (self.n_segmentation_failed or 0)}"
                f"/{self.n_measured} cells ({100 * rate:.1f}%)"
            )
        if self.n_dropped_failed:
            out.append(f"  dropped {self.n_dropped_failed} cells whose segmentation failed or with undefined "
                       "(NaN) features (--drop-failed)")
        if self.splits:
            out.append("  splits: " + ", ".join(f"{k}={v}" for k, v in self.splits.items()))
        return out


# ----------------------------------------------------------------------------- measuring


def measure_and_filter(
    images: np.ndarray, cells: pd.DataFrame, measure, *, n_jobs: int | None, drop_failed: bool,
    summary: IngestSummary,
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


class ControlRows:
    """Keeps the negative-control rows while streaming, to fit the profile normaliser at the end.

    Only control rows are needed to fit `ProfileNormaliser` (per-plate DMSO median/MAD;
    plates without controls fall back to the pooled statistics), so the rest of the
    screen is never held twice.
    """

    def __init__(self, control: str = "DMSO") -> None:
        self.control = control
        self._frames: list[pd.DataFrame] = []

    def add(self, cells: pd.DataFrame) -> None:
        columns = ["Metadata_Plate", "Metadata_Compound", *feature_columns(cells)]
        self._frames.append(cells.loc[cells["Metadata_Compound"] == self.control, columns])

    def normalisation(self) -> dict | None:
        """`ProfileNormaliser().fit(controls).to_dict()`, or None without controls or features."""
        frames = [f for f in self._frames if len(f)]
        if not frames or not feature_columns(frames[0]):
            log.info("no %s cells with features: dataset.json keeps normalisation = null", self.control)
            return None
        from cp2image.features import ProfileNormaliser

        return ProfileNormaliser(control_value=self.control).fit(pd.concat(frames, ignore_index=True)).to_dict()


def replicate_values(values: pd.Series) -> pd.Series:
    """Replicate numbers as integers (like the simulator) when they all are, else strings."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and (numeric == numeric.round()).all():
        return numeric.astype(np.int64)
    return values.astype(str)


# ----------------------------------------------------------------------------- MoA table


def concentration_key(values: pd.Series | np.ndarray) -> np.ndarray:
    """Concentrations rounded to 6 significant digits, so 0.003 == 0.003000 when joining."""
    arr = np.asarray(values, dtype=np.float64)
    return np.array([float(f"{v:.6g}") if np.isfinite(v) else np.nan for v in arr])


def read_moa_table(path: str | Path) -> pd.DataFrame:
    """Read BBBC021_v1_moa.csv-style `compound, concentration, moa` (one MoA per treatment)."""
    path = Path(path)
    table = read_csv(path)
    missing = [c for c in MOA_COLUMNS if c not in table.columns]
    if missing:
        raise IngestError(f"{path}: MoA table lacks column(s) {missing}; expected columns {list(MOA_COLUMNS)}")
    table = table[list(MOA_COLUMNS)].copy()
    table["concentration"] = numeric_column(table["concentration"], path=path, column="concentration")
    table["_conc_key"] = concentration_key(table["concentration"])
    dup = table.duplicated(["compound", "_conc_key"], keep=False)
    conflicting = table[dup].groupby(["compound", "_conc_key"])["moa"].nunique()
    if (conflicting > 1).any():
        first = conflicting[conflicting > 1].index[0]
        raise IngestError(f"{path}: treatment {first[0]} at {first[1]} µM has more than one MoA")
    return table.drop_duplicates(["compound", "_conc_key"])


def annotate_moa(compound: pd.Series, concentration: pd.Series, moa_table: pd.DataFrame) -> pd.Series:
    """MoA of each (compound, concentration); NaN where the table has no entry."""
    keys = pd.DataFrame({"compound": compound.to_numpy(), "_conc_key": concentration_key(concentration)})
    merged = keys.merge(moa_table[["compound", "_conc_key", "moa"]], on=["compound", "_conc_key"], how="left")
    return pd.Series(merged["moa"].to_numpy(), index=compound.index, name="Metadata_MoA")


# ----------------------------------------------------------------------------- CSV helpers


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with errors that name the file."""
    if not path.exists():
        raise IngestError(f"{path}: file not found")
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise IngestError(f"{path}: cannot parse CSV ({err})") from err


def numeric_column(values: pd.Series, *, path: Path, column: str) -> pd.Series:
    """Column as float, or an error naming the file, column and first bad value."""
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise IngestError(
            f"{path}: column {column} must be numeric, found {values.iloc[row]!r} (data row {row + 1})"
        )
    return converted.astype(np.float64)


# ----------------------------------------------------------------------------- splits


def assign_splits(
    cells: pd.DataFrame, *, by: SplitBy, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> pd.Series:
    """`Metadata_Split` by well (default) or by whole plate (see `assign_plate_splits`)."""
    if by not in SPLIT_BY:
        raise ValueError(f"split_by must be one of {SPLIT_BY}, got {by!r}")
    if by == "well":
        return assign_splits_by_well(cells, fractions=fractions, seed=seed)
    return assign_plate_splits(cells, seed=seed, fractions=fractions)


def assign_plate_splits(
    cells: pd.DataFrame, *, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> pd.Series:
    """Whole plates to train/val/test, chosen so the held-out plates cover as many MoAs as they can.

    Real screens are uneven: in the shared BBBC021 crops most plates carry a
    different mix of compounds, and one plate holds all the cycloheximide. So
    plates are not drawn blindly. For test, then val:

    1. MoAs (compounds when there is no ``Metadata_MoA``) are visited from the one
       on fewest plates to the one on most; for each not yet covered by the
       split, the first plate (in a `seed`-shuffled order) that carries it and
       may be held out joins the split.
    2. Further plates join while that brings the split's cell count closer to
       its fraction of all cells.

    A plate may be held out only if every compound on it keeps at least one
    training plate and at least half of its plates in train, so a plate carrying
    a compound no other plate has (BBBC021's cycloheximide plate, say) always
    stays in train, the model has seen every compound it is judged on, and a
    compound on three plates (latrunculin B) loses at most one to evaluation.
    No plate spans two splits.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    plate = cells["Metadata_Plate"].astype(str)
    compounds = cells["Metadata_Compound"].astype(str).groupby(plate).agg(lambda c: frozenset(c))
    unit = cells["Metadata_MoA"] if "Metadata_MoA" in cells.columns else cells["Metadata_Compound"]
    units = unit.where(unit.notna(), cells["Metadata_Compound"]).astype(str).groupby(plate).agg(frozenset)
    sizes = plate.value_counts()
    rng = np.random.default_rng(seed)
    order = [str(p) for p in rng.permutation(sorted(compounds.index))]
    split = {p: "train" for p in order}
    n_plates = {c: sum(c in compounds[p] for p in order) for c in set().union(*compounds)}
    train_plates = dict(n_plates)

    def may_hold_out(p: str) -> bool:  # every compound on p keeps ≥ 1 and ≥ half of its plates in train
        return split[p] == "train" and all(
            train_plates[c] - 1 >= max(1, n_plates[c] / 2) for c in compounds[p])

    def hold_out(p: str, name: str) -> None:
        split[p] = name
        for c in compounds[p]:
            train_plates[c] -= 1

    rarity = sorted(set().union(*units), key=lambda u: (sum(u in units[p] for p in order), u))
    for name, fraction in (("test", fractions[2]), ("val", fractions[1])):
        if fraction == 0:
            continue
        covered: set[str] = set()
        for u in rarity:
            if u in covered:
                continue
            pick = next((p for p in order if u in units[p] and may_hold_out(p)), None)
            if pick is not None:
                hold_out(pick, name)
                covered |= units[pick]
        target = fraction * len(cells)
        held = sum(sizes[p] for p in order if split[p] == name)
        for p in order:
            if may_hold_out(p) and abs(held + sizes[p] - target) < abs(held - target):
                hold_out(p, name)
                held += sizes[p]
    return pd.Series(plate.map(split).to_numpy(), index=cells.index, name="Metadata_Split")


def split_counts(splits: pd.Series) -> dict[str, int]:
    counts = splits.value_counts()
    return {name: int(counts.get(name, 0)) for name in ("train", "val", "test")}


__all__ = [
    "IngestError",
    "IngestSummary",
    "SPLIT_BY",
    "read_moa_table",
    "annotate_moa",
    "concentration_key",
    "assign_splits",
    "assign_plate_splits",
]

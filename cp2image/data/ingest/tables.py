"""Reading the CSV tables of an ingest: errors that name the file, numbers, MoA look-up."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.data.ingest.summary import IngestError

MOA_COLUMNS: tuple[str, ...] = ("compound", "concentration", "moa")


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


def replicate_values(values: pd.Series) -> pd.Series:
    """Replicate numbers as integers (like the simulator) when they all are, else strings."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and (numeric == numeric.round()).all():
        return numeric.astype(np.int64)
    return values.astype(str)



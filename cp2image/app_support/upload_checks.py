"""App-side additions to `cp2image.analysis.profiles` for the upload page.

`analysis.profiles.read_profiles_csv` does the parsing, name matching and NaN/inf
reporting. Two things it cannot see are handled here: pandas renames a repeated
header (`a`, `a.1`), so duplicates are detected on the raw header line; and users
need a template with the model's feature names.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from cp2image.data.columns import metadata_columns


@dataclass(frozen=True)
class UploadLimits:
    """Limits for one upload; `server.maxUploadSize` in .streamlit/config.toml caps the bytes too."""

    max_bytes: int = 20 * 1024 * 1024  # 20 MiB, equal to server.maxUploadSize
    max_rows: int = 2000  # cells per upload: about 2 s of generation on 2 CPU cores


def duplicated_header_names(data: bytes) -> list[str]:
    """Column names that appear more than once in the CSV's first line (after stripping spaces)."""
    first_line = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
    try:
        header = next(csv.reader(io.StringIO(first_line)), [])
    except csv.Error:
        return []
    names = [h.strip() for h in header]
    return sorted({n for n in names if n and names.count(n) > 1})


def template_csv(feature_names: Sequence[str], example: pd.DataFrame | None = None) -> bytes:
    """A CSV to fill in: Metadata_* columns of `example` (if any), then the model's features in order."""
    columns = list(feature_names)
    if example is None:
        return pd.DataFrame(columns=columns).to_csv(index=False).encode("utf-8")
    missing = [c for c in columns if c not in example.columns]
    if missing:
        raise ValueError(f"example rows lack model features {missing[:5]}")
    return example.loc[:, metadata_columns(example) + columns].to_csv(index=False).encode("utf-8")

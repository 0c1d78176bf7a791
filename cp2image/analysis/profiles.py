"""Read and check a user's CellProfiler profiles against a model's feature list.

For "generate images from your own profiles" (app page, `cp2image generate`): a CSV is
accepted only within size and row limits; its columns are matched to the model's
features *by name* (extra columns ignored, missing ones listed with close-name
suggestions); rows with NaN/inf (or unparsable text) in a model feature are reported by
row and column, and can be dropped with `ProfileCheck.usable()`.

Row numbers. A CSV's rows are numbered as a spreadsheet shows them: the header is row 1,
the first cell is row 2 (the file's line numbers when no field spans lines). The checked
frame's index holds these numbers, so the page's messages, gallery captions, zip file
names and `cp2image generate`'s index.csv all name a row the same way.

Separators. Comma, semicolon and tab are recognised from the header line (a CellProfiler
profile has hundreds of columns, so the separator that splits the header most is the
one); semicolon or tab files whose numbers use a decimal comma ("0,5") are read so.

Uploads (the app's page): `UploadLimits` caps one file; pandas renames a repeated header
(`a`, `a.1`), so `duplicated_header_names` looks at the raw header line; `template_csv`
gives users a file with the model's feature names to fill in.
"""
from __future__ import annotations

import csv
import difflib
import io
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from cp2image.data.columns import METADATA_PREFIX, metadata_columns

MAX_BYTES = 50 * 1024 * 1024  # default upload limit (50 MiB)
MAX_ROWS = 10_000  # default row limit: images are generated for every row
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
FIRST_DATA_ROW = 2  # spreadsheet numbering: the header is row 1
SPREADSHEET_ROWS = "spreadsheet row numbers: the header is row 1"
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+(?:[eE][-+]?\d+)?$")


def sniff_separator(data: bytes) -> tuple[str, str]:
    """(separator, decimal mark) of a CSV from its header and first data line.

    The separator is whichever of comma, semicolon and tab appears most often in the
    header line (comma when none does: a one-column file). With a semicolon or tab
    separator, numbers written "0,5" mean a decimal comma.
    """
    text = data[:65536].decode("utf-8-sig", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ",", "."
    counts = {sep: lines[0].count(sep) for sep in SEPARATORS}
    sep = max(counts, key=lambda k: (counts[k], k == ","))
    if counts[sep] == 0:
        sep = ","
    decimal = "."
    if sep != "," and len(lines) > 1:
        tokens = [t.strip().strip('"') for t in lines[1].split(sep)]
        if any(_DECIMAL_COMMA.match(t) for t in tokens) and not any(re.match(r"^-?\d+\.\d+", t) for t in tokens):
            decimal = ","
    return sep, decimal


@dataclass
class ProfileCheck:
    """The outcome of checking profiles: what is usable and what is wrong, by name and row."""

    frame: pd.DataFrame  # the input rows; model features coerced to float
    feature_names: list[str]
    missing: list[str]  # model features absent from the columns
    extra: list[str]  # columns that are not model features (ignored; Metadata_* kept for labels)
    bad_rows: list  # index labels of rows with a NaN/inf/unparsable model feature
    bad_cells: pd.DataFrame = field(repr=False)  # row, column, value for each non-finite entry (first 1000)
    suggestions: dict[str, list[str]] = field(default_factory=dict)  # missing feature → close column names
    numbering: str = "the table's row labels"  # what the row numbers in messages mean
    separator: str = ","  # the CSV's column separator (read_profiles_csv)
    decimal: str = "."  # the CSV's decimal mark

    @property
    def ok(self) -> bool:
        """True when every model feature is present and every row is finite."""
        return not self.missing and not self.bad_rows

    def messages(self) -> list[str]:
        """Human-readable problems, most important first (empty when ok)."""
        out = []
        if self.missing:
            shown = []
            for name in self.missing[:10]:
                hint = self.suggestions.get(name)
                shown.append(f"{name} (close: {', '.join(hint)})" if hint else name)
            more = f" and {len(self.missing) - 10} more" if len(self.missing) > 10 else ""
            out.append(f"{len(self.missing)} of the model's {len(self.feature_names)} features are missing: "
                       + "; ".join(shown) + more)
        if self.bad_rows:
            first = ", ".join(map(str, self.bad_rows[:10]))
            out.append(f"{len(self.bad_rows)} of {len(self.frame)} rows have NaN/inf or non-numeric feature values "
                       f"(rows {first}{' ...' if len(self.bad_rows) > 10 else ''}; {self.numbering})")
        return out

    def usable(self) -> pd.DataFrame:
        """Rows with all model features finite, columns = model features (model order) + Metadata_*.

        Raises ValueError when features are missing or no row is usable.
        """
        if self.missing:
            raise ValueError(self.messages()[0])
        keep = self.frame.drop(index=self.bad_rows)
        if keep.empty:
            raise ValueError("no row has finite values for every model feature")
        return keep.loc[:, list(self.feature_names) + metadata_columns(keep)]


def _as_float(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as float64; text that is not a number becomes NaN.

    Columns pandas already read as numbers are converted in one block; only text columns
    (a stray "n/a", a decimal comma) go through `pd.to_numeric` one by one, which is what
    made a 24-row, 492-feature upload cost ~1 s when every column went that way.
    """
    numeric = [c for c, dtype in frame.dtypes.items() if pd.api.types.is_numeric_dtype(dtype)
               and not pd.api.types.is_bool_dtype(dtype)]
    out = pd.DataFrame(frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan), index=frame.index, columns=numeric)
    text = [c for c in frame.columns if c not in set(numeric)]
    if text:
        coerced = {c: pd.to_numeric(frame[c], errors="coerce").astype(np.float64) for c in text}
        out = pd.concat([out, pd.DataFrame(coerced, index=frame.index)], axis=1)
    return out[list(frame.columns)]


def validate_profiles(
    frame: pd.DataFrame,
    feature_names: Sequence[str],
    *,
    max_rows: int = MAX_ROWS,
) -> ProfileCheck:
    """Check a DataFrame of raw profiles against the model's features (see module docstring)."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"profiles must be a pandas DataFrame; got {type(frame).__name__}")
    if len(frame) == 0:
        raise ValueError("the profiles table has no rows")
    if len(frame) > max_rows:
        raise ValueError(f"the profiles table has {len(frame)} rows; the limit is {max_rows} (split the file)")
    names = list(feature_names)
    columns = [str(c).strip() for c in frame.columns]
    counts = Counter(columns)  # one pass: a CellProfiler header has ~500 names
    dup = sorted(c for c, n in counts.items() if n > 1)
    if dup:
        raise ValueError(f"duplicate column names: {', '.join(dup[:10])}")
    frame = frame.set_axis(columns, axis=1)  # a new frame: the caller's stays as it was
    wanted = set(names)
    missing = [f for f in names if f not in counts]
    extra = [c for c in columns if c not in wanted]
    candidates = [c for c in extra if not c.startswith(METADATA_PREFIX)]
    suggestions = {}
    for name in missing:
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        if close:
            suggestions[name] = close
    present = [f for f in names if f in counts]
    bad_rows: list = []
    bad_cells = pd.DataFrame(columns=["row", "column", "value"])
    if present:
        original = frame[present]
        numeric = _as_float(original)
        # one concat instead of ~500 column assignments (which fragment the frame and took ~0.3 s)
        rest = [c for c in columns if c not in wanted]
        frame = pd.concat([numeric, frame[rest]], axis=1)[columns]
        bad = ~np.isfinite(numeric.to_numpy())
        bad_rows = list(frame.index[bad.any(axis=1)])
        r, c = np.nonzero(bad)
        r, c = r[:1000], c[:1000]
        bad_cells = pd.DataFrame(
            {"row": frame.index[r], "column": [present[j] for j in c],
             "value": [original.iat[i, j] for i, j in zip(r, c)]}
        )
    return ProfileCheck(frame, names, missing, extra, bad_rows, bad_cells, suggestions)


def read_profiles_csv(
    source: str | os.PathLike | bytes | BinaryIO,
    feature_names: Sequence[str],
    *,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
) -> ProfileCheck:
    """Read a CSV (path, bytes or binary file object) within limits and check it.

    Raises ValueError for an over-size file, more than `max_rows` rows, or text that
    is not a CSV table; column and value problems are reported in the result instead.
    """
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"profiles file not found: {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"{path.name} is {size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB")
        data = path.read_bytes()
    else:
        data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"the profiles file is larger than the {max_bytes / 2**20:.0f} MiB limit")
    if not data.strip():
        raise ValueError("the profiles file is empty")
    sep, decimal = sniff_separator(data)
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=sep, decimal=decimal, nrows=max_rows + 1, low_memory=False,
                            skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"could not read the profiles as CSV: {exc}") from exc
    frame = spreadsheet_rows(frame)
    if len(frame) > max_rows:
        raise ValueError(f"the profiles file has more than {max_rows} rows; split it or raise max_rows")
    if frame.shape[1] == 1:
        header = str(frame.columns[0])
        glued = [f for f in feature_names if f in header and f != header]
        if glued:  # several feature names in one header cell: an unrecognised separator
            raise ValueError(f"the header is one column that holds {len(glued)} feature names (e.g. {glued[0]}): "
                             "the columns are separated by something other than a comma, semicolon or tab. "
                             "Save it as CSV with comma-, semicolon- or tab-separated columns")
    check = validate_profiles(frame, feature_names, max_rows=max_rows)
    check.numbering, check.separator, check.decimal = SPREADSHEET_ROWS, sep, decimal
    return check


def spreadsheet_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Index the rows as a spreadsheet numbers them (header = row 1); trailing blank rows dropped."""
    frame = frame.copy()
    frame.index = pd.RangeIndex(FIRST_DATA_ROW, FIRST_DATA_ROW + len(frame), name="row")
    filled = frame.notna().any(axis=1).to_numpy()
    last = int(np.flatnonzero(filled)[-1]) + 1 if filled.any() else 0
    return frame.iloc[:last]


# -- uploads ---------------------------------------------------------------------------
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

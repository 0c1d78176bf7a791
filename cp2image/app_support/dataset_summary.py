"""Counts a dataset's summary shows, in the field's own terms (BBBC021 has 12 MoAs, DMSO being the control)."""
from __future__ import annotations

import pandas as pd

from cp2image.data.columns import MOA


def moa_count(cells: pd.DataFrame, *, control: str = "DMSO") -> int:
    """Distinct mechanisms of action, not counting the control label or missing labels (0 without the column)."""
    if MOA not in cells.columns:
        return 0
    labels = cells[MOA].dropna().astype(str)
    return int(labels[labels != control].nunique())

"""Train/validation/test assignment by well, so no well spans two splits.

Cells from one well share plate and illumination effects; splitting by cell
would leak them between training and evaluation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS: tuple[str, ...] = ("train", "val", "test")


def assign_splits_by_well(
    cells: pd.DataFrame,
    *,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    group_columns: tuple[str, ...] = ("Metadata_Plate", "Metadata_Well"),
) -> pd.Series:
    """Return a `Metadata_Split` series ("train"/"val"/"test") grouped by well.

    Wells are shuffled with `seed` within each (compound, concentration) when those
    columns exist, so every treatment with ≥3 wells is represented in every split.
    """
    missing = [c for c in group_columns if c not in cells.columns]
    if missing:
        raise ValueError(f"cannot split by well: missing column(s) {missing}")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    wells = cells[list(group_columns)].drop_duplicates().reset_index(drop=True)
    stratum_cols = [c for c in ("Metadata_Compound", "Metadata_Concentration") if c in cells.columns]
    if stratum_cols:
        first = cells.drop_duplicates(list(group_columns)).set_index(list(group_columns))[stratum_cols]
        wells = wells.join(first, on=list(group_columns))
        strata = wells.groupby(stratum_cols, sort=True, dropna=False).indices.values()
    else:
        strata = [np.arange(len(wells))]
    labels = np.empty(len(wells), dtype=object)
    for idx in strata:
        idx = np.asarray(idx)[rng.permutation(len(idx))]
        n = len(idx)
        n_val = int(round(fractions[1] * n))
        n_test = int(round(fractions[2] * n))
        if n >= 3:
            n_val, n_test = max(n_val, 1 if fractions[1] > 0 else 0), max(n_test, 1 if fractions[2] > 0 else 0)
        n_train = max(n - n_val - n_test, 0)
        labels[idx[:n_train]] = "train"
        labels[idx[n_train : n_train + n_val]] = "val"
        labels[idx[n_train + n_val :]] = "test"
    wells["Metadata_Split"] = labels
    merged = cells[list(group_columns)].merge(wells[list(group_columns) + ["Metadata_Split"]], on=list(group_columns), how="left")
    return pd.Series(merged["Metadata_Split"].to_numpy(), index=cells.index, name="Metadata_Split")

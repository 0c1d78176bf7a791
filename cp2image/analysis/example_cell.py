"""Pick the one example cell Home shows beside its generated image.

Home shows a dataset crop next to the image the model draws from that cell's profile,
so a new user sees at once what "generated from CellProfiler features" means and how
close it gets. The example should be an ordinary control cell, not an outlier and not a
random draw that changes with the seed: the control cell closest to the control
median in robust z-space (each feature centred on its control median and scaled by its
MAD, so no unit dominates), which is stable and reproducible.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cp2image.data.columns import COMPOUND


def typical_control_cell(cells: pd.DataFrame, features: Sequence[str], *, control: str = "DMSO") -> int:
    """Row position (for `cells.iloc` / `images[...]`) of the control cell nearest the control median.

    Distance is Euclidean over features scaled by each feature's control MAD (features
    with MAD 0 or non-finite values are left out). Falls back to all cells when there is
    no `control` group. Raises ValueError on an empty table or no usable feature.
    """
    if len(cells) == 0:
        raise ValueError("no cells to choose an example from")
    names = [f for f in features if f in cells.columns]
    if not names:
        raise ValueError(f"none of the {len(features)} model features are columns of the cells table")
    in_group = (cells[COMPOUND].astype(str) == control).to_numpy() if COMPOUND in cells.columns else None
    if in_group is None or not in_group.any():
        in_group = np.ones(len(cells), dtype=bool)
    values = cells[names].to_numpy(dtype=np.float64)[in_group]  # (n_control, p)
    median = np.nanmedian(values, axis=0)
    mad = np.nanmedian(np.abs(values - median), axis=0)
    usable = np.isfinite(median) & np.isfinite(mad) & (mad > 0)
    if not usable.any():
        usable = np.isfinite(median)
        mad = np.ones_like(median)
    z = (values[:, usable] - median[usable]) / mad[usable]
    distance = np.sqrt(np.nansum(z ** 2, axis=1))
    distance[~np.all(np.isfinite(values[:, usable]), axis=1)] = np.inf  # a cell with missing features is no example
    best = int(np.argmin(distance))
    return int(np.flatnonzero(in_group)[best])

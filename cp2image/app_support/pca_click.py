"""Turn a click on the PCA chart into a point in PC space and name the nearest groups.

The chart (see `charts.pca_scatter`) sends Streamlit's selection dict; the first
selected point's x/y is the clicked place. Its nearest concentration groups (by
distance to each group's mean in PC1/PC2) are the real cells shown beside the
generated one.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

CONCENTRATION = "concentration"  # as in CompoundTrajectory.group_means


@dataclass(frozen=True)
class ClickedPoint:
    """Where the user clicked, in PC coordinates."""

    pc1: float
    pc2: float
    on_line: bool  # True when the click hit the red line (then `t` is its parameter)
    t: float | None
    cell: int | None  # row label of a clicked real cell, if a cell was clicked


def clicked_point(event: Mapping[str, Any] | None, *, line_curve: int | None = None) -> ClickedPoint | None:
    """The first selected point of a Plotly selection event, or None when nothing is selected.

    `line_curve` is the trace number of the red line, whose `customdata` holds t; other
    traces carry the clicked cell's row label in `customdata` (negative = not a cell).
    """
    if not event:
        return None
    selection = event.get("selection") if isinstance(event, Mapping) else None
    points = (selection or {}).get("points") or []
    if not points:
        return None
    point = points[0]
    try:
        x, y = float(point["x"]), float(point["y"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    custom = point.get("customdata")
    if isinstance(custom, (list, tuple)):
        custom = custom[0] if custom else None
    on_line = line_curve is not None and point.get("curve_number") == line_curve
    t = float(custom) if on_line and custom is not None else None
    cell = None
    if not on_line and custom is not None:
        try:
            cell = int(custom) if int(custom) >= 0 else None
        except (TypeError, ValueError):
            cell = None
    return ClickedPoint(pc1=x, pc2=y, on_line=on_line, t=t, cell=cell)


def nearest_groups(group_means: pd.DataFrame, pc1: float, pc2: float, *, k: int = 2) -> list[float]:
    """Concentrations of the `k` group means nearest to (pc1, pc2), nearest first."""
    for column in ("PC1", "PC2", CONCENTRATION):
        if column not in group_means.columns:
            raise ValueError(f"group_means needs a {column!r} column")
    if len(group_means) == 0:
        raise ValueError("no groups to compare with")
    d = np.hypot(group_means["PC1"].to_numpy(float) - pc1, group_means["PC2"].to_numpy(float) - pc2)
    order = np.argsort(d, kind="stable")[: max(1, k)]
    return [float(c) for c in group_means[CONCENTRATION].to_numpy()[order]]

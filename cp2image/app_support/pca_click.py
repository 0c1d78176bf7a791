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


# -- a click in the page URL (so a copied link reopens "this cell") ------------------------------
def click_to_text(click: ClickedPoint, *, compound: str) -> str:
    """`compound|line|t|pc1|pc2`, `compound|cell|label|pc1|pc2` or `compound|point||pc1|pc2` for `?pca_click=`.

    The compound is part of the text because PC coordinates mean nothing in another
    compound's PCA; `click_from_text` refuses a click made for another compound.
    """
    if click.on_line:
        kind, ref = "line", "" if click.t is None else f"{click.t:.6g}"
    elif click.cell is not None:
        kind, ref = "cell", str(click.cell)
    else:
        kind, ref = "point", ""
    return f"{compound}|{kind}|{ref}|{click.pc1:.6g}|{click.pc2:.6g}"


def click_from_text(text: str, *, compound: str) -> ClickedPoint:
    """The click written by `click_to_text`; ValueError (naming the problem) for anything else."""
    parts = str(text).split("|")
    if len(parts) != 5:
        raise ValueError(f"{text!r} is not a PCA click (expected compound|kind|ref|PC1|PC2)")
    made_for, kind, ref, pc1, pc2 = parts
    if made_for != compound:
        raise ValueError(f"the click was made in the PCA of {made_for!r}, not {compound!r}")
    if kind not in ("line", "cell", "point"):
        raise ValueError(f"unknown click kind {kind!r} (line, cell or point)")
    try:
        x, y = float(pc1), float(pc2)
        t = float(ref) if kind == "line" and ref else None
        cell = int(ref) if kind == "cell" else None
    except ValueError:
        raise ValueError(f"{text!r} holds a value that is not a number") from None
    if not (math.isfinite(x) and math.isfinite(y)) or (t is not None and not math.isfinite(t)):
        raise ValueError(f"{text!r} holds a non-finite coordinate")
    return ClickedPoint(pc1=x, pc2=y, on_line=kind == "line", t=t, cell=cell)


def line_angle_degrees(group_means: pd.DataFrame, end_concentration: float) -> float:
    """Angle (0–90°) between the PC1 axis and the line from the control mean to `end_concentration`'s mean.

    0° means the dose response lies along PC1, 90° along PC2 (axes at equal scale).
    """
    control = group_means.loc[group_means[CONCENTRATION] == 0]
    end = group_means.loc[np.isclose(group_means[CONCENTRATION].astype(float), float(end_concentration))]
    if control.empty or end.empty:
        raise ValueError(f"group_means lacks the control or the {end_concentration:g} µM group")
    d1 = float(end["PC1"].iloc[0] - control["PC1"].iloc[0])
    d2 = float(end["PC2"].iloc[0] - control["PC2"].iloc[0])
    return math.degrees(math.atan2(abs(d2), abs(d1)))


def dose_direction_sentence(angle: float, *, compound: str, end: float) -> str:
    """One plain sentence on where the dose response runs in this PCA (from `line_angle_degrees`)."""
    if angle <= 30:
        where = "lines up along PC1"
    elif angle >= 60:
        where = "runs mostly along PC2"
    else:
        where = "runs diagonally, across both PC1 and PC2"
    return (f"The DMSO → {end:g} µM line is at {angle:.0f}° to the PC1 axis: {compound}'s dose response {where} "
            "(axes drawn at equal scale). PC1 and PC2 are the directions of largest variance over all these cells, "
            "so cell-to-cell variation within DMSO can outweigh the drug effect on PC1.")

"""Read a click on the PCA chart: the selection event, the click in the page URL, the line's angle in words.

The chart (see `charts.pca_scatter`) sends Streamlit's selection dict; the first
selected point's x/y is the clicked place. The geometry behind the page (the doses
nearest the click, the dose line's angle, the profile at a click) is
`cp2image.analysis.trajectory`'s.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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


def dose_direction_sentence(angle: float, *, compound: str, end: float) -> str:
    """One plain sentence on where the dose response runs in this PCA (angle from `trajectory.line_angle_degrees`)."""
    if angle <= 30:
        where = "lines up along PC1"
    elif angle >= 60:
        where = "runs mostly along PC2"
    else:
        where = "runs diagonally, across both PC1 and PC2"
    return (f"The DMSO → {end:g} µM line is at {angle:.0f}° to the PC1 axis: {compound}'s dose response {where} "
            "(axes drawn at equal scale). PC1 and PC2 are the directions of largest variance over all these cells, "
            "so cell-to-cell variation within DMSO can outweigh the drug effect on PC1.")

"""Plotly figures for the app, built from the same DataFrames the export panels use.

Each builder takes plain tables (PCA scores, a correlation table, a long table of
real/generated pairs, a perturbation table) and returns a `go.Figure` in the app's
template, so the interactive chart and the downloadable matplotlib panel always
show the same numbers.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cp2image.app_support.plot_theme import (
    CONTROL_COLOUR,
    LINE_COLOUR,
    OKABE_ITO,
    TEMPLATE_NAME,
    concentration_colours,
)

LINE_TRACE_NAME = "DMSO → top-dose line"


def _subsample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed).sort_index()


def pca_scatter(
    scores: pd.DataFrame,
    line: pd.DataFrame | None = None,
    *,
    group_means: pd.DataFrame | None = None,
    max_points_per_group: int = 600,
    explained: Sequence[float] | None = None,
    line_name: str = LINE_TRACE_NAME,
    seed: int = 0,
) -> go.Figure:
    """Cells in PC1/PC2 coloured by group, group means, and the clickable red line.

    Point `customdata` is the row label in `scores` (cells) or the line parameter t
    (line points), so a click maps back to a cell or a place on the line. The line is
    drawn with many small markers so that clicking anywhere along it selects a point.
    """
    for column in ("PC1", "PC2", "group", "concentration"):
        if column not in scores.columns:
            raise ValueError(f"scores need a {column!r} column (CompoundTrajectory.scores); got {list(scores.columns)[:8]}")
    colours = concentration_colours(scores["concentration"].to_numpy())
    fig = go.Figure()
    order = scores.groupby("group", sort=False)["concentration"].first().sort_values()
    for k, (group, dose) in enumerate(order.items()):
        members = _subsample(scores.loc[scores["group"] == group], max_points_per_group, seed + k)
        colour = colours.get(float(dose), OKABE_ITO[k % len(OKABE_ITO)])
        fig.add_trace(
            go.Scatter(
                x=members["PC1"], y=members["PC2"], mode="markers", name=str(group),
                marker=dict(size=5, color=colour, opacity=0.6),
                selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=0.6)),
                customdata=np.asarray(members.index), legendgroup=str(group),
                hovertemplate=f"{group}<br>PC1 %{{x:.2f}}, PC2 %{{y:.2f}}<extra>cell %{{customdata}}</extra>",
            )
        )
    if group_means is not None and len(group_means):
        fig.add_trace(
            go.Scatter(
                x=group_means["PC1"], y=group_means["PC2"], mode="markers", name="group means",
                marker=dict(size=13, symbol="diamond", color=[colours.get(float(c), CONTROL_COLOUR) for c in group_means["concentration"]],
                            line=dict(color="black", width=1.5)),
                text=[str(g) for g in group_means["group"]],
                customdata=np.full(len(group_means), -1),
                hovertemplate="mean of %{text}<extra></extra>",
            )
        )
    if line is not None and len(line):
        fig.add_trace(
            go.Scatter(
                x=line["PC1"], y=line["PC2"], mode="lines+markers", name=line_name,
                line=dict(color=LINE_COLOUR, width=3), marker=dict(size=8, color=LINE_COLOUR, opacity=0.35),
                selected=dict(marker=dict(size=14, opacity=1.0, color="black")),
                unselected=dict(marker=dict(opacity=0.35)),
                customdata=np.asarray(line["t"]),
                hovertemplate="t = %{customdata:.2f}<br>click to generate<extra></extra>",
            )
        )
    x_title, y_title = "PC1", "PC2"
    if explained is not None and len(explained) >= 2:
        x_title = f"PC1 ({100 * explained[0]:.0f}% of variance)"
        y_title = f"PC2 ({100 * explained[1]:.0f}% of variance)"
    # Legend below the plot (a side legend took a third of the width at 1280 px and squeezed PC1's
    # ticks); axes at equal scale so the angle of the dose line on screen is its true angle.
    fig.update_layout(
        template=TEMPLATE_NAME, xaxis_title=x_title, yaxis_title=y_title, height=600,
        clickmode="event+select", dragmode="pan", margin=dict(l=60, r=10, t=20, b=40),
        legend=dict(itemsizing="constant", orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0.0),
    )
    fig.update_xaxes(nticks=9, tickformat=".0f", automargin=True)
    fig.update_yaxes(scaleanchor="x", scaleratio=1, nticks=9, tickformat=".0f", automargin=True)
    return fig


def feature_scatter(pairs: pd.DataFrame, feature: str, *, r: float | None = None, max_points: int = 3000,
                    pixel_size_um: float | None = None) -> go.Figure:
    """Real vs generated value of one feature over held-out cells, with the identity line.

    Areas and lengths are drawn in µm² / µm when `pixel_size_um` is given (pixels on hover);
    the title carries the readable feature name and r.
    """
    from cp2image.analysis.feature_labels import labelled, scale_note, to_physical, unit_symbol

    for column in ("real", "generated"):
        if column not in pairs.columns:
            raise ValueError(f"pairs need a {column!r} column; got {list(pairs.columns)}")
    data = pairs[np.isfinite(pairs["real"].to_numpy(float)) & np.isfinite(pairs["generated"].to_numpy(float))]
    data = _subsample(data, max_points, 0)
    try:
        unit = unit_symbol(feature, pixel_size_um=pixel_size_um)
        note = scale_note(feature)
        x, y = ([to_physical(feature, v, pixel_size_um=pixel_size_um) for v in data[c]] for c in ("real", "generated"))
        title_name = labelled(feature)
    except ValueError:  # not a CellProfiler name: plain numbers
        unit, note, title_name = "", "", feature
        x, y = list(data["real"]), list(data["generated"])
    suffix = f" ({unit})" if unit else (f" ({note})" if note and note != "no unit" else "")
    pixels = unit in ("µm²", "µm")
    hover = "real %{x:,.3~r}<br>generated %{y:,.3~r}" + (f" {unit}" if unit else "")
    if pixels:
        hover += "<br>(pixels: real %{customdata[0]:,.3~r}, generated %{customdata[1]:,.3~r})"
    fig = go.Figure(go.Scatter(x=x, y=y, mode="markers", marker=dict(size=5, color=OKABE_ITO[0], opacity=0.5),
                               customdata=np.column_stack([data["real"], data["generated"]]) if pixels else None,
                               hovertemplate=hover + "<extra></extra>", name="cells"))
    if len(data):
        lo, hi = float(min(min(x), min(y))), float(max(max(x), max(y)))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                 line=dict(color="#555555", dash="dot", width=1.5), hoverinfo="skip"))
    title = title_name if r is None or not np.isfinite(r) else f"{title_name}   (r = {r:.2f})"
    fig.update_layout(template=TEMPLATE_NAME, height=420, title=title, showlegend=False,
                      xaxis_title=f"measured on real cell{suffix}", yaxis_title=f"measured on generated cell{suffix}")
    fig.update_xaxes(tickformat=",~r")
    fig.update_yaxes(tickformat=",~r")
    return fig


def sweep_chart(table: pd.DataFrame, *, feature: str, rho: float | None = None, slope: float | None = None,
                pixel_size_um: float | None = None) -> go.Figure:
    """Requested vs measured value of the swept feature (the model follows it when measured runs along y = x).

    Areas and lengths in µm² / µm when `pixel_size_um` is given (pixels on hover); the title
    leads with the slope (1 = the cell changed by what was asked), then Spearman ρ.
    """
    from cp2image.analysis.feature_labels import labelled, to_physical, unit_symbol

    req_px = table["requested"].to_numpy(float)
    mea_px = table["measured"].to_numpy(float) if "measured" in table.columns else None
    try:
        unit = unit_symbol(feature, pixel_size_um=pixel_size_um)
        convert = lambda v: np.array([to_physical(feature, x, pixel_size_um=pixel_size_um) for x in v])  # noqa: E731
        name = labelled(feature)
    except ValueError:  # not a CellProfiler name
        unit, convert, name = "", (lambda v: np.asarray(v, float)), feature
    req = convert(req_px)
    pixels = unit in ("µm²", "µm")
    px_unit = "px²" if unit == "µm²" else "px"
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=req, y=req, mode="lines", name="requested (y = x)", hoverinfo="skip",
                             line=dict(color="#555555", dash="dot", width=1.5)))
    if mea_px is not None:
        hover = "requested %{x:,.3~r}<br>measured %{y:,.3~r}" + (f" {unit}" if unit else "")
        if pixels:
            hover += f"<br>(pixels: %{{customdata[0]:,.3~r}} → %{{customdata[1]:,.3~r}} {px_unit})"
        fig.add_trace(go.Scatter(x=req, y=convert(mea_px), mode="lines+markers", name="measured on generated image",
                                 marker=dict(size=9, color=OKABE_ITO[0]), line=dict(color=OKABE_ITO[0], width=2),
                                 customdata=np.column_stack([req_px, mea_px]) if pixels else None,
                                 hovertemplate=hover + "<extra></extra>"))
    parts = []
    if slope is not None and np.isfinite(slope):
        parts.append(f"slope = {slope:.2f}")
    if rho is not None and np.isfinite(rho):
        parts.append(f"Spearman ρ = {rho:.2f}")
    title = "requested vs measured" + (f" ({', '.join(parts)})" if parts else "")
    suffix = f" ({unit})" if unit else ""
    fig.update_layout(template=TEMPLATE_NAME, height=340, title=title,
                      xaxis_title=f"requested {name}{suffix}", yaxis_title=f"measured{suffix}")
    fig.update_xaxes(tickformat=",~r")
    fig.update_yaxes(tickformat=",~r")
    return fig


def cosine_chart(tables: dict[str, pd.DataFrame]) -> go.Figure:
    """Cosine similarity to the target against interpolation step, one line per target MoA."""
    fig = go.Figure()
    for k, (moa, table) in enumerate(tables.items()):
        fig.add_trace(go.Scatter(x=table["step"], y=table["cosine"], mode="lines+markers", name=moa,
                                 line=dict(color=OKABE_ITO[k % len(OKABE_ITO)], width=2)))
    fig.update_layout(template=TEMPLATE_NAME, height=320, xaxis_title="step", yaxis_title="cosine to target",
                      yaxis_range=[-0.05, 1.05], xaxis=dict(dtick=1))
    return fig

"""The PCA explorer's Plotly figure, built from the same DataFrame the export panel uses.

Plotly stays here for its click selection on a scatter of thousands of points with a
clickable line (customdata per point, pan and equal axes). The other pages' simple charts
are Altair (`vega_charts`): Plotly's front-end bundle (4.6 MB) made their first visits slow.
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

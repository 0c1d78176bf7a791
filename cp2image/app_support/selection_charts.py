"""Altair charts whose selections drive the page: a brush on the histogram of r picks features.

Plotly draws the app's other charts; this one is Altair because its interval selection
(a brush over a range of r) comes back to the server through `st.altair_chart(...,
on_select="rerun")` as a plain range, and Vega-Lite highlights the brushed bars in the
browser without a round trip. `features_in_range` turns the returned selection into the
table rows it covers, so the feature table below the chart lists exactly the brushed
features. Exports go through the matplotlib panels (`cp2image.analysis.panels`), as
every other chart's do: Altair's own PNG/SVG export needs vl-convert (a V8 engine).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from cp2image.analysis.panels.charts import LINE_COLOUR, OKABE_ITO

BRUSH = "r_range"  # the selection parameter's name: the key of the range in Streamlit's event
BIN_WIDTH = 0.05


def binned_r(table: pd.DataFrame, *, column: str = "pearson_r", width: float = BIN_WIDTH) -> pd.DataFrame:
    """Counts of finite r in bins of `width` on [-1, 1]: r_low, r_high, features (empty bins kept)."""
    if column not in table.columns:
        raise ValueError(f"correlation table has no {column!r} column; columns are {list(table.columns)[:8]}")
    r = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    edges = np.round(np.arange(-1.0, 1.0 + width / 2, width), 10)
    counts, _ = np.histogram(r[np.isfinite(r)], bins=edges)
    return pd.DataFrame({"r_low": edges[:-1], "r_high": edges[1:], "features": counts})


def correlation_histogram(table: pd.DataFrame, *, threshold: float = 0.5, column: str = "pearson_r",
                          height: int = 320) -> alt.LayerChart:
    """Histogram of per-feature r with the threshold marked; drag across it to select a range of r."""
    bins = binned_r(table, column=column)
    finite = int(bins["features"].sum())
    r = pd.to_numeric(table[column], errors="coerce")
    above = float((r[np.isfinite(r)] > threshold).mean()) if finite else float("nan")
    brush = alt.selection_interval(name=BRUSH, encodings=["x"])
    bars = alt.Chart(bins).mark_bar(binSpacing=1).encode(
        x=alt.X("r_low:Q", bin="binned", title="Pearson r (real vs generated, per feature)",
                scale=alt.Scale(domain=[-1, 1])),
        x2="r_high:Q",
        y=alt.Y("features:Q", title="features"),
        color=alt.condition(brush, alt.value(OKABE_ITO[0]), alt.value("#b9c9d6")),
        tooltip=[alt.Tooltip("r_low:Q", title="r from", format=".2f"),
                 alt.Tooltip("r_high:Q", title="r to", format=".2f"), alt.Tooltip("features:Q")],
    ).add_params(brush)
    rule = alt.Chart(pd.DataFrame({"r": [threshold]})).mark_rule(color=LINE_COLOUR, strokeDash=[6, 4],
                                                                  strokeWidth=2).encode(x="r:Q")
    title = f"{100 * above:.0f}% of {finite} features have r > {threshold:g}"
    return alt.layer(bars, rule).properties(height=height, title=title)


def selected_range(event: Any) -> tuple[float, float] | None:
    """(low, high) of r brushed on `correlation_histogram`, from Streamlit's selection event; None if none."""
    selection = event.get("selection") if isinstance(event, Mapping) else getattr(event, "selection", None)
    brushed = selection.get(BRUSH) if isinstance(selection, Mapping) else None
    if not isinstance(brushed, Mapping):
        return None
    for values in brushed.values():  # {"r_low": [a, b]}: the brushed field's extent
        if isinstance(values, (list, tuple)) and len(values) == 2:
            try:
                low, high = sorted(float(v) for v in values)
            except (TypeError, ValueError):
                return None
            return (low, high) if np.isfinite(low) and np.isfinite(high) else None
    return None


def features_in_range(table: pd.DataFrame, low: float, high: float, *, column: str = "pearson_r",
                      width: float = BIN_WIDTH) -> pd.DataFrame:
    """Rows of the bars the brush highlights, best r first.

    Vega-Lite tests the brush on each bar's left edge (`r_low`, the selection's field), so a
    bar is selected when its left edge lies in [low, high]; the table lists the features
    those highlighted bars count, bar for bar.
    """
    r = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
    bar_low = np.floor((r + 1.0) / width + 1e-9) * width - 1.0  # left edge of each feature's bar
    bar_low = np.where(r >= 1.0, 1.0 - width, bar_low)  # r = 1 sits in the last bar, as np.histogram puts it
    tolerance = 1e-9
    hit = np.isfinite(r) & (bar_low >= low - tolerance) & (bar_low <= high + tolerance)
    return table.loc[hit].sort_values(column, ascending=False).reset_index(drop=True)

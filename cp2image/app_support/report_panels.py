"""Matplotlib panels for the correlation report, so its charts export like every other panel.

Same numbers as the Plotly charts in `charts.py`; `cp2image.analysis.export` turns
them into PNG / SVG / PDF / CSV.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cp2image.analysis.panels import Panel
from cp2image.app_support.plot_theme import LINE_COLOUR, OKABE_ITO


def _axes(width: float = 4.6, height: float = 3.2):
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def correlation_histogram_panel(table: pd.DataFrame, *, threshold: float = 0.5, column: str = "pearson_r") -> Panel:
    """Histogram of per-feature r (bins of 0.05 on [-1, 1]); CSV = the per-feature table."""
    if column not in table.columns:
        raise ValueError(f"correlation table has no {column!r} column")
    r = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
    finite = r[np.isfinite(r)]
    fig, ax = _axes()
    ax.hist(finite, bins=np.linspace(-1, 1, 41), color=OKABE_ITO[0], edgecolor="white", linewidth=0.4)
    ax.axvline(threshold, color=LINE_COLOUR, ls="--", lw=1.5)
    fraction = float(np.mean(finite > threshold)) if finite.size else float("nan")
    ax.set_title(f"{100 * fraction:.0f}% of {finite.size} features have r > {threshold:g}", fontsize=9)
    ax.set_xlabel("Pearson r (real vs generated)")
    ax.set_ylabel("features")
    ax.set_xlim(-1, 1)
    return Panel(fig, table.copy(), title="feature correlation histogram", kind="chart",
                 meta={"threshold": threshold, "fraction_above": fraction})


def ranked_features_panel(ranked: pd.DataFrame, *, title: str, column: str = "pearson_r") -> Panel:
    """Horizontal bars of r for a ranked list of features (top or bottom of the report)."""
    if not {"feature", column} <= set(ranked.columns):
        raise ValueError(f"ranked table needs 'feature' and {column!r} columns")
    fig, ax = _axes(6.4, 0.28 * max(len(ranked), 3) + 0.9)
    values = ranked[column].to_numpy(float)
    ax.barh(np.arange(len(ranked)), values, color=[OKABE_ITO[0] if v >= 0 else OKABE_ITO[5] for v in values])
    ax.set_yticks(np.arange(len(ranked)), labels=list(ranked["feature"]), fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(min(-0.05, float(np.nanmin(values)) - 0.05) if len(values) else -1, 1)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlabel("Pearson r")
    ax.set_title(title, fontsize=9)
    return Panel(fig, ranked.copy(), title=title, kind="chart")


def feature_scatter_panel(pairs: pd.DataFrame, feature: str, *, r: float | None = None) -> Panel:
    """Real vs generated values of one feature with y = x; CSV = the pairs."""
    if not {"real", "generated"} <= set(pairs.columns):
        raise ValueError("pairs need 'real' and 'generated' columns")
    data = pairs[np.isfinite(pairs["real"].to_numpy(float)) & np.isfinite(pairs["generated"].to_numpy(float))]
    fig, ax = _axes(4.2, 4.0)
    ax.scatter(data["real"], data["generated"], s=6, alpha=0.5, color=OKABE_ITO[0], linewidths=0,
               rasterized=len(data) > 500)
    if len(data):
        lo = float(min(data["real"].min(), data["generated"].min()))
        hi = float(max(data["real"].max(), data["generated"].max()))
        ax.plot([lo, hi], [lo, hi], ls=":", color="0.4", lw=1)
    ax.set_xlabel("measured on real cell", fontsize=8)
    ax.set_ylabel("measured on generated cell", fontsize=8)
    label = feature if r is None or not np.isfinite(r) else f"{feature}\nr = {r:.2f}"
    ax.set_title(label, fontsize=8)
    return Panel(fig, pairs.copy(), title=feature, kind="chart", meta={"pearson_r": r})


def cosine_curves_panel(tables: dict[str, pd.DataFrame]) -> Panel:
    """Cosine to the target against step, one line per target MoA (`InterpolationResult.table()` each)."""
    if not tables:
        raise ValueError("no interpolation tables to draw")
    fig, ax = _axes()
    rows = []
    for k, (moa, table) in enumerate(tables.items()):
        if not {"step", "cosine"} <= set(table.columns):
            raise ValueError(f"table for {moa!r} needs 'step' and 'cosine' columns")
        ax.plot(table["step"], table["cosine"], marker="o", ms=3, color=OKABE_ITO[k % len(OKABE_ITO)], label=moa)
        rows.append(table.drop(columns=[c for c in ("replaced_features",) if c in table.columns]).assign(target_moa=moa))
    ax.set_xlabel("step")
    ax.set_ylabel("cosine similarity to target")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7, frameon=False)
    return Panel(fig, pd.concat(rows, ignore_index=True), title="cosine to target", kind="chart")

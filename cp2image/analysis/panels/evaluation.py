"""The evaluation report's figures (`cp2image evaluate` writes them as PNG and SVG under figures/).

- correlation_ranked: Pearson r of every feature, ranked, coloured by compartment, with
  the r = 0.5 threshold (the paper's Fig. 4a);
- correlation_top6: real vs generated scatter of the six best-kept features (Fig. 4b);
- correlation_top_bottom: the top and bottom 20 features;
- examples: original crops above the generated ones (`render.composite`, the one colour
  mapping of every picture);
- moa_fidelity: per-MoA recall of the real-trained classifier, real vs generated.
Built on `matplotlib.figure.Figure` (no pyplot state).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cp2image.analysis import render

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

COMPARTMENT_COLOURS = {"Nuclei": "#1f77b4", "Cells": "#2ca02c", "Cytoplasm": "#d62728"}
N_EXAMPLES = 8


def correlation_ranked_figure(table, *, threshold: float = 0.5) -> Figure:
    defined = table[np.isfinite(table["pearson_r"].to_numpy())].reset_index(drop=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    colours = [COMPARTMENT_COLOURS.get(c, "grey") for c in defined["compartment"]]
    ax.bar(np.arange(len(defined)), defined["pearson_r"], width=1.0, color=colours, linewidth=0)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=0.8)
    frac = float(np.mean(defined["pearson_r"] > threshold)) if len(defined) else float("nan")
    ax.set_title(f"Per-feature Pearson r, real vs generated: {frac:.1%} of {len(defined)} features > {threshold:g}")
    ax.set_xlabel("feature (ranked)")
    ax.set_ylabel("Pearson r")
    ax.set_ylim(min(-0.2, float(defined["pearson_r"].min()) - 0.05) if len(defined) else -0.2, 1.0)
    from matplotlib.patches import Patch

    handles = [Patch(color=colour, label=name) for name, colour in COMPARTMENT_COLOURS.items()]
    ax.legend(handles=handles, loc="upper right", frameon=False, fontsize=8)
    return fig


def top_scatter_figure(report, *, n: int = 6) -> Figure:
    top = report.top(n)
    cols = 3
    rows = max(1, int(np.ceil(len(top) / cols)))
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2 * cols, 3.0 * rows))
    for i, row in top.iterrows():
        ax = fig.add_subplot(rows, cols, i + 1)
        x = report.real[row["feature"]].to_numpy(dtype=float)
        y = report.generated[row["feature"]].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        # thousands of dots: raster them inside the SVG (axes and text stay vector), or one figure takes ~1 MB
        ax.scatter(x[ok], y[ok], s=4, alpha=0.4, color="#1f77b4", linewidths=0, rasterized=True)
        lo, hi = np.nanmin(np.r_[x[ok], y[ok]]), np.nanmax(np.r_[x[ok], y[ok]])
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.6, linestyle=":")
        ax.set_title(f"{row['feature']}\nr = {row['pearson_r']:.2f}", fontsize=7)
        ax.set_xlabel("measured on original", fontsize=7)
        ax.set_ylabel("measured on generated", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig


def top_bottom_figure(report, *, n: int = 20) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 0.22 * n + 1.2))
    for k, (title, part) in enumerate((("best kept", report.top(n)), ("worst kept", report.bottom(n)))):
        ax = fig.add_subplot(1, 2, k + 1)
        part = part.iloc[::-1]
        ax.barh(part["feature"], part["pearson_r"],
                color=[COMPARTMENT_COLOURS.get(c, "grey") for c in part["compartment"]])
        ax.set_title(f"{n} {title}", fontsize=9)
        ax.set_xlabel("Pearson r")
        ax.tick_params(axis="y", labelsize=6)
    fig.tight_layout()
    return fig


def examples_figure(real: np.ndarray, generated: np.ndarray, *, paired: bool) -> Figure:
    n = min(N_EXAMPLES, len(real), len(generated))
    pick = np.linspace(0, min(len(real), len(generated)) - 1, n).round().astype(int)  # spread over the table
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.2 * n, 2.6))
    rgb_real, rgb_gen = render.composite(np.asarray(real[pick])), render.composite(np.asarray(generated[pick]))
    for i in range(n):
        for r, (rgb, label) in enumerate(((rgb_real, "original"), (rgb_gen, "generated"))):
            ax = fig.add_subplot(2, n, r * n + i + 1)
            ax.imshow(rgb[i])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle("originals (top) and " + ("their generated images" if paired else "random samples") + " (bottom)",
                 fontsize=9)
    return fig


def moa_figure(per_class) -> Figure:
    """Per-MoA recall on real vs generated held-out cells; n per MoA under its name."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    x = np.arange(len(per_class))
    ax.bar(x - 0.2, per_class["real_recall"], width=0.4, label="real held-out", color="#7f7f7f")
    ax.bar(x + 0.2, per_class["generated_recall"], width=0.4, label="generated", color="#1f77b4")
    ax.set_xticks(x, [f"{m} (n={n})" for m, n in zip(per_class["moa"], per_class["n"])], rotation=60, ha="right",
                  fontsize=7)
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("MoA classifier trained on real profiles")
    return fig

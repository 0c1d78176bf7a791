"""Chart panels: PCA, sweeps, cosine curves and the correlation report's charts, as matplotlib figures + data.

Each builder returns a `Panel` (figure + the numbers it shows) that
`cp2image.analysis.export` turns into PNG / SVG / PDF / CSV; the app's interactive charts
(Altair: `cp2image.app_support.vega_charts`, `selection_charts`; Plotly for PCA:
`cp2image.app_support.charts`) draw the same tables. Colours: Okabe-Ito for
categories, red for the DMSO → top-dose line, as on the pages.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cp2image.analysis.panels.images import Panel

OKABE_ITO: tuple[str, ...] = (  # colour-blind safe categories (also the app's chart colours)
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
)
CONTROL_COLOUR = "#9a9a9a"  # DMSO
LINE_COLOUR = "#d62728"  # the red DMSO → top-dose line (the paper's Fig. 5b)


def _chart(width: float = 4.2, height: float = 3.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def pca_scatter(
    scores: pd.DataFrame,
    *,
    line: pd.DataFrame | None = None,
    group_means: pd.DataFrame | None = None,
    title: str | None = None,
    point: tuple[float, float] | None = None,
    max_points_per_group: int | None = 2000,
    seed: int = 0,
) -> Panel:
    """PC1/PC2 scatter coloured by group (in order of `concentration`), red line on top.

    `scores` needs PC1, PC2, group, concentration (as `CompoundTrajectory.scores`).
    `group_means` (as `CompoundTrajectory.group_means`) adds each group's mean as a large
    marker. `point` marks a clicked point. Groups larger than `max_points_per_group` are
    subsampled (seeded) for drawing; the CSV holds the drawn points.
    """
    need = {"PC1", "PC2", "group", "concentration"}
    if not need <= set(scores.columns):
        raise ValueError(f"scores need columns {sorted(need)}; missing {sorted(need - set(scores.columns))}")
    fig, ax = _chart(5.6, 3.4)
    import matplotlib

    order = scores.groupby("group", sort=False)["concentration"].first().sort_values()
    cmap = matplotlib.colormaps["viridis"]
    drawn = []
    colours: dict = {}
    rng = np.random.default_rng(seed)
    for k, (group, conc) in enumerate(order.items()):
        g = scores.loc[scores["group"] == group]
        if max_points_per_group is not None and len(g) > max_points_per_group:
            g = g.iloc[np.sort(rng.choice(len(g), max_points_per_group, replace=False))]
        colour = "0.55" if conc == 0 else cmap(0.15 + 0.8 * (k - 1) / max(1, len(order) - 2))
        colours[group] = colour
        ax.scatter(g["PC1"], g["PC2"], s=6, alpha=0.6, color=colour, label=f"{group} (n={int((scores['group'] == group).sum())})",
                   linewidths=0, rasterized=len(g) > 500)
        drawn.append(g[["PC1", "PC2", "group", "concentration"]].assign(kind="cell"))
    if group_means is not None:
        for _, row in group_means.iterrows():
            ax.scatter([row["PC1"]], [row["PC2"]], s=60, marker="D", color=colours.get(row["group"], "0.3"),
                       edgecolors="black", linewidths=0.8, zorder=4)
        drawn.append(group_means[["group", "concentration", "PC1", "PC2"]].assign(kind="group mean"))
    if line is not None:
        ax.plot(line["PC1"], line["PC2"], color="red", lw=1.8, marker="o", ms=3, label="interpolation line", zorder=5)
        drawn.append(line[["t", "PC1", "PC2"]].assign(kind="line"))
    if point is not None:
        ax.scatter([point[0]], [point[1]], marker="x", s=60, color="black", zorder=6, label="selected")
        drawn.append(pd.DataFrame({"PC1": [point[0]], "PC2": [point[1]], "kind": ["selected"]}))
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.legend(fontsize=6, markerscale=2, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        ax.set_title(title, fontsize=8, wrap=True)
    return Panel(fig, pd.concat(drawn, ignore_index=True), title=title, kind="chart")


def cosine_curve(table: pd.DataFrame, *, title: str | None = None) -> Panel:
    """Cosine similarity to the target against interpolation step (`InterpolationResult.table()`)."""
    if not {"step", "cosine"} <= set(table.columns):
        raise ValueError("table needs columns step and cosine (InterpolationResult.table())")
    fig, ax = _chart()
    ax.plot(table["step"], table["cosine"], marker="o", color="C0", label="cosine (origin at start cell)")
    if "cosine_uncentred" in table.columns:
        ax.plot(table["step"], table["cosine_uncentred"], marker=".", ls="--", color="0.5", label="plain cosine")
    ax.set_xlabel("step")
    ax.set_ylabel("cosine similarity to target")
    ax.set_ylim(min(-0.05, float(np.nanmin(table[[c for c in ("cosine", "cosine_uncentred") if c in table]].to_numpy())) - 0.05), 1.05)
    ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    cols = [c for c in ("step", "n_replaced", "cosine", "cosine_uncentred") if c in table.columns]
    return Panel(fig, table[cols].copy(), title=title, kind="chart")


def requested_vs_measured(table: pd.DataFrame, *, rho: float | None = None, slope: float | None = None,
                          title: str | None = None) -> Panel:
    """Measured feature value on the generated image against the requested value, with y = x."""
    if not {"requested", "measured"} <= set(table.columns):
        raise ValueError("table needs columns requested and measured (PerturbationResult.table() after measuring)")
    fig, ax = _chart()
    req = table["requested"].to_numpy(np.float64)
    mea = table["measured"].to_numpy(np.float64)
    ax.plot(req, mea, marker="o", color="C0", label="measured")
    finite = np.isfinite(mea)
    lo = float(np.nanmin(np.concatenate([req, mea[finite]]))) if finite.any() else float(req.min())
    hi = float(np.nanmax(np.concatenate([req, mea[finite]]))) if finite.any() else float(req.max())
    ax.plot([lo, hi], [lo, hi], ls=":", color="0.5", label="y = x")
    feature = str(table["feature"].iloc[0]) if "feature" in table.columns else "feature"
    ax.set_xlabel(f"requested {feature}", fontsize=7)
    ax.set_ylabel(f"measured on generated image", fontsize=7)
    label = title or feature
    if slope is not None:
        label += f"\nslope = {slope:.2f}"
    if rho is not None:
        label += (", " if slope is not None else "\n") + f"Spearman ρ = {rho:.3f}"
    ax.set_title(label, fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return Panel(fig, table.copy(), title=title, kind="chart", meta={"spearman_rho": rho, "slope": slope})


# -- the correlation report ------------------------------------------------------------
def correlation_histogram_panel(table: pd.DataFrame, *, threshold: float = 0.5, column: str = "pearson_r") -> Panel:
    """Histogram of per-feature r (bins of 0.05 on [-1, 1]); CSV = the per-feature table."""
    if column not in table.columns:
        raise ValueError(f"correlation table has no {column!r} column")
    r = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
    finite = r[np.isfinite(r)]
    fig, ax = _chart(4.6, 3.2)
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
    fig, ax = _chart(6.4, 0.28 * max(len(ranked), 3) + 0.9)
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
    fig, ax = _chart(4.2, 4.0)
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
    fig, ax = _chart(4.6, 3.2)
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


def puncta_by_class_panel(table: pd.DataFrame) -> Panel:
    """Actin puncta per crop by class, real beside generated (`evaluation.files.image_quality_tables`)."""
    if not {"class", "real", "generated"} <= set(table.columns):
        raise ValueError("the puncta table needs 'class', 'real' and 'generated' columns")
    fig, ax = _chart(6.4, 0.36 * max(len(table), 3) + 0.9)
    y = np.arange(len(table))
    ax.barh(y - 0.2, table["real"].to_numpy(float), height=0.4, color=OKABE_ITO[0], label="real crops")
    ax.barh(y + 0.2, table["generated"].to_numpy(float), height=0.4, color=OKABE_ITO[1], label="generated")
    ax.set_yticks(y, labels=list(table["class"]), fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("actin puncta per crop")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title("Actin puncta, real vs generated", fontsize=9)
    return Panel(fig, table.copy(), title="Actin puncta by class", kind="chart")

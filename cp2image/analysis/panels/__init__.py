"""Figure panels: image strips/grids with captions, and charts, as matplotlib figures + data.

A `Panel` holds a matplotlib `Figure` and a DataFrame of the numbers it shows, so the
same panel exports to PNG/SVG/PDF and CSV (`cp2image.analysis.export`) offline, with no
browser. Figures are built with `matplotlib.figure.Figure` directly (never pyplot), so
building panels in threads (Streamlit) does not touch global state, and matplotlib is
imported only when a figure is built.

- `images`: crops (strips, grids, split channels, sweeps, interpolations, trajectories);
- `charts`: PCA, requested vs measured, cosine curves and the correlation report's charts;
- `evaluation`: the figures of `cp2image evaluate`'s report.

Channels: `channels=None` draws the colour composite of all three channels
(`render.composite`, DNA blue, β-tubulin red, F-actin green); one channel ("Actin" or
["Actin"]) is drawn in grey, as the app shows it (`view_rgb`); several channels draw
their composite. Images keep their raw intensities unless `stretch=True`.
"""
from __future__ import annotations

from cp2image.analysis import render
from cp2image.analysis.panels.charts import (
    CONTROL_COLOUR,
    LINE_COLOUR,
    OKABE_ITO,
    correlation_histogram_panel,
    cosine_curve,
    cosine_curves_panel,
    feature_scatter_panel,
    pca_scatter,
    puncta_by_class_panel,
    ranked_features_panel,
    requested_vs_measured,
)
from cp2image.analysis.panels.images import (
    Panel,
    channel_views,
    image_grid,
    image_strip,
    interpolation_grid,
    interpolation_panel,
    perturbation_grid,
    perturbation_panel,
    single_channel_view,
    trajectory_panel,
    view_rgb,
)

__all__ = [
    "CONTROL_COLOUR", "LINE_COLOUR", "OKABE_ITO", "Panel", "channel_views", "correlation_histogram_panel",
    "cosine_curve", "cosine_curves_panel", "feature_scatter_panel", "image_grid", "image_strip", "interpolation_grid",
    "interpolation_panel", "pca_scatter", "perturbation_grid", "perturbation_panel", "ranked_features_panel", "render",
    "requested_vs_measured", "single_channel_view", "trajectory_panel", "view_rgb",
]

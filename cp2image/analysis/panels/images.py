"""Image panels: strips and grids of crops with captions, as matplotlib figures + data.

A `Panel` holds a matplotlib `Figure` and a DataFrame of the numbers it shows, so the
same panel exports to PNG/SVG/PDF and CSV (`cp2image.analysis.export`) offline, with no
browser. Figures are built with `matplotlib.figure.Figure` directly (never pyplot), so
building panels in threads (Streamlit) does not touch global state.

Channels: `channels=None` draws the colour composite of all three channels
(`render.composite`, DNA blue, β-tubulin red, F-actin green); a list of channel names
draws the composite of those; a single name (e.g. "Actin") draws that channel in grey.
Images keep their raw intensities unless `stretch=True` (one shared scale per channel).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from cp2image.analysis import render
from cp2image.channels import CHANNEL_COLOURS, CHANNEL_LABELS, CHANNELS, PIXEL_SIZE_UM

if TYPE_CHECKING:  # matplotlib is imported only when a figure is built (the app shows crops without it)
    from matplotlib.figure import Figure

TILE_INCHES = 0.95  # edge of one crop in the figure
CAPTION_INCHES = 0.2  # height per caption line under a row
LABEL_INCHES = 0.9  # width of the row-label column


@dataclass
class Panel:
    """A figure and the numbers it shows (exported as CSV next to the picture)."""

    figure: Figure
    data: pd.DataFrame
    title: str | None = None
    kind: str = "images"  # "images" or "chart"
    meta: dict = field(default_factory=dict)  # e.g. channel mapping, scale bar length


def single_channel_view(channels: Sequence[str] | str | None) -> str | None:
    """The one channel a view shows alone (drawn grey), or None for a colour composite.

    "Actin" and ["Actin"] both mean F-actin alone, in grey as the app shows it; None or
    several channels mean the composite in the paper's colours.
    """
    if isinstance(channels, str):
        return channels
    if channels is not None and len(channels) == 1:
        return channels[0]
    return None


def view_rgb(images: np.ndarray, channels: Sequence[str] | str | None = None, *, stretch: bool = False) -> np.ndarray:
    """(N, H, W, 3) uint8 of a channel view: one channel in grey, else the colour composite.

    The single rule used by the app's crops and by every exported panel, so a download
    shows what the page shows.
    """
    alone = single_channel_view(channels)
    if alone is not None:
        return render.single_channel(images, alone, stretch=stretch)
    return render.composite(images, channels, stretch=stretch)


def _channel_note(channels: Sequence[str] | str | None) -> str:
    alone = single_channel_view(channels)
    if alone is not None:
        return f"{CHANNEL_LABELS.get(alone, alone)} (grey)"
    names = list(CHANNELS) if channels is None else list(channels)
    colour_name = {(0.0, 0.0, 1.0): "blue", (1.0, 0.0, 0.0): "red", (0.0, 1.0, 0.0): "green"}
    return ", ".join(f"{CHANNEL_LABELS.get(c, c)} {colour_name.get(tuple(CHANNEL_COLOURS[c]), '')}".strip() for c in names)


def _draw_scale_bar(ax, x0: float, y0: float, tile: int, scale_bar_um: float, pixel_size_um: float) -> float:
    """Bar in the bottom-right of the tile at (x0, y0); returns its length in pixels."""
    length = scale_bar_um / pixel_size_um
    if not (0 < length < tile - 4):
        raise ValueError(
            f"a {scale_bar_um} µm scale bar is {length:.1f} px at {pixel_size_um} µm/px; it must fit in a {tile} px crop"
        )
    from matplotlib.patches import Rectangle

    right, bottom = x0 + tile - 3, y0 + tile - 4
    ax.add_patch(Rectangle((right - length, bottom - 2), length, 2, color="white", linewidth=0))
    ax.text(right - length / 2, bottom - 3.5, f"{scale_bar_um:g} µm", color="white", ha="center", va="bottom", fontsize=6)
    return length


def image_grid(
    rows: Sequence[np.ndarray],
    *,
    captions: Sequence[Sequence[str]] | None = None,
    row_labels: Sequence[str] | None = None,
    channels: Sequence[str] | str | None = None,
    scale_bar_um: float | None = None,
    pixel_size_um: float = PIXEL_SIZE_UM,
    title: str | None = None,
    data: pd.DataFrame | None = None,
    stretch: bool = False,
    row_channels: Sequence[Sequence[str] | str | None] | None = None,
) -> Panel:
    """Rows of crops (each (n_i, 3, H, W) uint8; rows may differ in length) with captions.

    `row_channels` sets the channel view per row (e.g. a split-channel grid); otherwise
    `channels` applies to every row. The scale bar goes on the last crop of the first row.
    `data` is the table exported with the panel (default: row, column, caption).
    """
    rows = [np.asarray(r) for r in rows]
    if not rows or any(len(r) == 0 for r in rows):
        raise ValueError("image_grid needs at least one row and every row needs at least one image")
    shapes = {r.shape[2:] for r in rows}
    if len(shapes) != 1:
        raise ValueError(f"all crops must have the same size; got {sorted(shapes)}")
    h, w = shapes.pop()
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    if captions is not None:
        if len(captions) != n_rows or any(len(c) != len(r) for c, r in zip(captions, rows)):
            raise ValueError("captions must give one string per image in every row")
    if row_labels is not None and len(row_labels) != n_rows:
        raise ValueError(f"row_labels has {len(row_labels)} entries for {n_rows} rows")
    if row_channels is not None and len(row_channels) != n_rows:
        raise ValueError(f"row_channels has {len(row_channels)} entries for {n_rows} rows")
    views = row_channels if row_channels is not None else [channels] * n_rows

    n_lines = 0 if captions is None else max((str(c).count("\n") + 1 for row in captions for c in row), default=0)
    gap = 4  # px between crops
    cap_px = int(round(n_lines * CAPTION_INCHES / TILE_INCHES * w))  # caption band under each row, in pixels
    row_h = h + cap_px + gap
    canvas = np.full((n_rows * row_h - gap, n_cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, (r, view) in enumerate(zip(rows, views)):
        rgb = view_rgb(r, view, stretch=stretch)
        for j in range(len(r)):
            canvas[i * row_h: i * row_h + h, j * (w + gap): j * (w + gap) + w] = rgb[j]

    label_in = 0.0
    if row_labels is not None:
        longest = max((len(line) for label in row_labels for line in str(label).split("\n")), default=0)
        label_in = max(LABEL_INCHES, 0.065 * longest + 0.15)
    title_in = 0.35 if title else 0.0
    px_per_in = w / TILE_INCHES
    width_in = canvas.shape[1] / px_per_in + label_in + 0.1
    height_in = canvas.shape[0] / px_per_in + title_in + 0.1
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in))
    ax = fig.add_axes([
        (label_in + 0.05) / width_in, 0.05 / height_in,
        canvas.shape[1] / px_per_in / width_in, canvas.shape[0] / px_per_in / height_in,
    ])
    ax.imshow(canvas, interpolation="none", extent=(-0.5, canvas.shape[1] - 0.5, canvas.shape[0] - 0.5, -0.5))
    ax.set_axis_off()
    if captions is not None:
        for i, row in enumerate(captions):
            for j, text in enumerate(row):
                ax.text(j * (w + gap) + w / 2, i * row_h + h + 1, str(text), ha="center", va="top", fontsize=7)
    if row_labels is not None:
        for i, label in enumerate(row_labels):
            ax.text(-6, i * row_h + h / 2, str(label), ha="right", va="center", fontsize=7)
    meta: dict = {"channels": [_channel_note(v) for v in views]}
    if scale_bar_um is not None:
        meta["scale_bar_px"] = _draw_scale_bar(ax, (len(rows[0]) - 1) * (w + gap), 0, w, scale_bar_um, pixel_size_um)
        meta["scale_bar_um"] = scale_bar_um
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.05 / height_in, va="top")
    if data is None:
        data = pd.DataFrame(
            [
                {"row": i, "column": j, "row_label": None if row_labels is None else row_labels[i],
                 "caption": None if captions is None else captions[i][j]}
                for i, r in enumerate(rows) for j in range(len(r))
            ]
        )
    return Panel(fig, data, title=title, kind="images", meta=meta)


def image_strip(
    images: np.ndarray,
    captions: Sequence[str] | None,
    *,
    channels: Sequence[str] | str | None = None,
    scale_bar_um: float | None = None,
    pixel_size_um: float = PIXEL_SIZE_UM,
    title: str | None = None,
    data: pd.DataFrame | None = None,
    stretch: bool = False,
) -> Panel:
    """One row of crops (N, 3, H, W) uint8 with a caption under each."""
    images = np.asarray(images)
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images")
    return image_grid(
        [images],
        captions=None if captions is None else [list(captions)],
        channels=channels,
        scale_bar_um=scale_bar_um,
        pixel_size_um=pixel_size_um,
        title=title,
        data=data,
        stretch=stretch,
    )


def channel_views(
    images: np.ndarray,
    captions: Sequence[str] | None = None,
    *,
    scale_bar_um: float | None = None,
    title: str | None = None,
    data: pd.DataFrame | None = None,
    stretch: bool = False,
) -> Panel:
    """Split-channel grid: composite on the first row, then DNA, β-tubulin, F-actin in grey."""
    images = np.asarray(images)
    rows = [images] * (1 + len(CHANNELS))
    labels = ["merge"] + [CHANNEL_LABELS[c] for c in CHANNELS]
    caps = None if captions is None else [list(captions)] + [[""] * len(images)] * len(CHANNELS)
    return image_grid(rows, captions=caps, row_labels=labels, row_channels=[None, *CHANNELS],
                      scale_bar_um=scale_bar_um, title=title, data=data, stretch=stretch)


# -- panels for the analyses ---------------------------------------------------------
def perturbation_panel(result, *, channels=None, scale_bar_um: float | None = None, stretch: bool = False) -> Panel:
    """Fig. 4c row: the sweep with requested (and measured) values under each crop."""
    table = result.table()
    caps = _sweep_captions(table)
    title = f"{result.feature}"
    if result.spearman_rho is not None:
        slope = f"slope = {result.slope:.2f}, " if result.slope is not None else ""
        title += f"  ({slope}Spearman ρ = {result.spearman_rho:.2f})"
    return image_strip(result.images, caps, channels=channels, scale_bar_um=scale_bar_um, title=title,
                       data=table, stretch=stretch)


def _sweep_captions(table: pd.DataFrame) -> list[str]:
    """Requested (and measured) value per crop as plain numbers ("1,390", never "1.39e+03"); "*" = clipped."""
    from cp2image.analysis.feature_labels import plain_number

    caps = []
    for _, row in table.iterrows():
        text = plain_number(row["requested"]) + ("*" if bool(row.get("clipped", False)) else "")
        if "measured" in table.columns:
            text += "\nmeas. " + plain_number(row["measured"])
        caps.append(text)
    return caps


def _feature_label(feature: str) -> str:
    """"Nucleus area" over "(Nuclei_AreaShape_Area)" for a row label; the name alone if not a CellProfiler name."""
    from cp2image.analysis.feature_labels import readable_name

    try:
        return f"{readable_name(feature)}\n({feature})"
    except ValueError:
        return feature.replace("_", " ", 1)


def perturbation_grid(results: Sequence, *, channels=None, scale_bar_um: float | None = None, title: str | None = None,
                      stretch: bool = False) -> Panel:
    """Fig. 4c: one row per swept feature, requested (and measured) values under each crop."""
    if not results:
        raise ValueError("perturbation_grid needs at least one PerturbationResult")
    labels = []
    for r in results:
        label = _feature_label(r.feature)
        if r.slope is not None:  # slope first: ρ = 1 with slope 0.03 is a cell that barely changed
            label += f"\nslope = {r.slope:.2f}"
        if r.spearman_rho is not None:
            label += f"\nSpearman ρ = {r.spearman_rho:.2f}"
        if getattr(r, "n_clipped", 0):
            label += f"\n{r.n_clipped} step(s) clipped"
        labels.append(label)
    tables = [r.table().assign(spearman_rho=r.spearman_rho, slope=r.slope) for r in results]
    return image_grid([r.images for r in results], captions=[_sweep_captions(t) for t in tables], row_labels=labels,
                      channels=channels, scale_bar_um=scale_bar_um, title=title,
                      data=pd.concat(tables, ignore_index=True), stretch=stretch)


def _interpolation_row(result) -> tuple[np.ndarray, list[str]]:
    table = result.table()
    caps = [f"step {s}\ncos {c:.2f}" for s, c in zip(table["step"], table["cosine"])]
    if result.source_image is not None and result.target_image is not None:
        images = np.concatenate([result.source_image[None], result.images, result.target_image[None]])
        return images, [f"real\n{result.control}"] + caps + ["real\ntarget"]
    return result.images, caps


def interpolation_grid(results: Sequence, *, channels=None, scale_bar_um: float | None = None, title: str | None = None,
                       stretch: bool = False) -> Panel:
    """Fig. 5a: one row per target MoA; generated steps with the cosine to the target."""
    if not results:
        raise ValueError("interpolation_grid needs at least one InterpolationResult")
    rows, caps = zip(*(_interpolation_row(r) for r in results))
    data = pd.concat([r.table().assign(target_moa=r.target_moa) for r in results], ignore_index=True)
    return image_grid(list(rows), captions=list(caps), row_labels=[r.target_moa for r in results], channels=channels,
                      scale_bar_um=scale_bar_um, title=title, data=data, stretch=stretch)


def interpolation_panel(result, *, channels=None, scale_bar_um: float | None = None, stretch: bool = False) -> Panel:
    """Fig. 5a row: (real start), generated steps with cosine to the target, (real target)."""
    images, caps = _interpolation_row(result)
    title = f"{result.control} → {result.target_moa}  ({result.dims_per_step} features per step)"
    return image_strip(images, caps, channels=channels, scale_bar_um=scale_bar_um,
                       title=title, data=result.table(), stretch=stretch)


def trajectory_panel(
    real_rows: Sequence[tuple[str, np.ndarray]],
    line: pd.DataFrame,
    generated: np.ndarray,
    *,
    channels=None,
    scale_bar_um: float | None = None,
    title: str | None = None,
    stretch: bool = False,
) -> Panel:
    """Fig. 5c: real cells per concentration (first row) over crops generated along the line.

    `real_rows` is [(label, crops (k, 3, H, W)), ...] in concentration order; one crop of
    each is shown (the first). `line` is `CompoundTrajectory.line()` (its t labels the
    generated row).
    """
    if len(line) != len(generated):
        raise ValueError(f"{len(line)} line points for {len(generated)} generated images")
    if not real_rows:
        raise ValueError("real_rows is empty: give at least one concentration's real cells")
    real = np.stack([np.asarray(crops)[0] for _, crops in real_rows])
    captions = [[label for label, _ in real_rows], [f"t = {t:.2f}" for t in line["t"]]]
    data = pd.concat(
        [pd.DataFrame({"row": "real", "label": [label for label, _ in real_rows]}),
         pd.DataFrame({"row": "generated", "label": [f"t={t:.3f}" for t in line["t"]], "t": line["t"].to_numpy(),
                       "PC1": line["PC1"].to_numpy(), "PC2": line["PC2"].to_numpy()})],
        ignore_index=True,
    )
    return image_grid([real, generated], captions=captions, row_labels=["real", "generated"], channels=channels,
                      scale_bar_um=scale_bar_um, title=title, data=data, stretch=stretch)

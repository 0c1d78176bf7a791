"""A figure of example crops: one row per MoA and per latrunculin B concentration.

Rows: DMSO, each of the 12 MoAs at its highest simulated concentration, then
latrunculin B at every simulated concentration. Crops are coloured with
`CHANNEL_COLOURS` (via `cp2image.analysis.render.composite`), with one intensity
scale shared by all crops so brightness differences between rows are real.

`cp2image figures simulated DATASET OUT.png` writes the figure.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cp2image.data.simulate.phenotypes import MOAS


def example_rows(cells: pd.DataFrame, *, per_row: int = 6, seed: int = 0,
                 dose_compound: str = "latrunculin B") -> list[tuple[str, np.ndarray]]:
    """(label, row indices) for DMSO, each MoA (highest dose) and each dose of `dose_compound`."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, np.ndarray]] = []

    def pick(mask: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(mask)
        return np.sort(rng.choice(idx, min(per_row, idx.size), replace=False)) if idx.size else idx

    comp = cells["Metadata_Compound"].to_numpy()
    conc = cells["Metadata_Concentration"].to_numpy()
    moa = cells["Metadata_MoA"].to_numpy()
    rows.append(("DMSO", pick(comp == "DMSO")))
    for m in MOAS:
        in_moa = moa == m
        if not in_moa.any():
            continue
        # the compound of this MoA with the most concentrations, at its highest one
        counts = cells.loc[in_moa].groupby("Metadata_Compound")["Metadata_Concentration"].nunique()
        best = counts.idxmax()
        top = conc[in_moa & (comp == best)].max()
        rows.append((f"{m}\n{best} {top:g} µM", pick(in_moa & (comp == best) & (conc == top))))
    for c in sorted(set(conc[comp == dose_compound])):
        rows.append((f"{dose_compound} {c:g} µM", pick((comp == dose_compound) & (conc == c))))
    return rows


def examples_figure(images: np.ndarray, cells: pd.DataFrame, *, per_row: int = 6, seed: int = 0):
    """Matplotlib figure with one labelled strip of crops per row of `example_rows`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cp2image.analysis.render import composite

    rows = example_rows(cells, per_row=per_row, seed=seed)
    all_idx = np.concatenate([idx for _, idx in rows])
    crops = np.asarray(images[np.sort(all_idx)])
    order = {int(i): j for j, i in enumerate(np.sort(all_idx))}
    rgb = composite(crops)  # (N, H, W, 3), shared colour mapping
    h = crops.shape[-1]
    fig, axes = plt.subplots(len(rows), 1, figsize=(per_row * 1.0 + 2.6, len(rows) * 1.02), dpi=150)
    for ax, (label, idx) in zip(np.atleast_1d(axes), rows):
        strip = np.ones((h, per_row * (h + 2), 3), np.uint8) * 255
        for k, i in enumerate(idx):
            strip[:, k * (h + 2) : k * (h + 2) + h] = rgb[order[int(i)]]
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle("Virtual BBBC021: DNA (blue), β-tubulin (red), F-actin (green)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98), h_pad=0.2)
    return fig

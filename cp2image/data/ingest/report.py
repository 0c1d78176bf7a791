"""A short Markdown report of an ingested dataset: what went in, what came out.

Derived numbers only (counts, rates, medians), so it may be committed even when
the crops themselves may not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cp2image.data.columns import FAILED_COLUMN
from cp2image.data.format import Dataset
from cp2image.data.ingest.summary import IngestSummary

GLANCE_FEATURES: tuple[str, ...] = (
    "Nuclei_AreaShape_Area",
    "Cells_AreaShape_Area",
    "Nuclei_Intensity_MeanIntensity_DNA",
    "Cells_Intensity_MeanIntensity_Actin",
    "Cells_Intensity_MeanIntensity_Tubulin",
)


def _table(frame: pd.DataFrame) -> str:
    """DataFrame → GitHub Markdown table (no tabulate dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ingest_report(dataset: Dataset, summary: IngestSummary, *, command: str | None = None) -> str:
    """Markdown: summary, cells per plate/treatment/split, segmentation, feature families."""
    cells = dataset.cells
    features = dataset.feature_names
    out = [f"# Ingest report: `{dataset.path.name}`", ""]
    if command:
        out += ["Command:", "", "```", command, "```", ""]
    provenance = dataset.meta.get("provenance", {})
    if provenance:
        out += ["Provenance: " + ", ".join(f"{k}={v}" for k, v in provenance.items() if v is not None), ""]
    out += ["## Summary", "", *(f"- {line.strip()}" for line in summary.lines()), ""]

    group = [c for c in ("Metadata_Plate", "Metadata_Compound", "Metadata_Concentration", "Metadata_MoA",
                         "Metadata_Split") if c in cells.columns]
    agg = {"cells": ("Metadata_Plate", "size")}
    if FAILED_COLUMN in cells.columns:
        agg["segmented_%"] = (FAILED_COLUMN, lambda s: 100.0 * (1.0 - s.astype(float).mean()))
    per_group = cells.groupby(group, dropna=False).agg(**agg).reset_index()
    out += ["## Cells per plate and treatment", "", _table(per_group), ""]

    out += ["## Features", "", f"{len(features)} feature columns (names in `dataset.json` → `features`).", ""]
    families = pd.Series([f.split("_")[0] + "_" + f.split("_")[1] for f in features]).value_counts().sort_index()
    out += [_table(families.rename_axis("compartment_group").reset_index(name="n")), ""]
    ok = ~cells[FAILED_COLUMN].astype(bool) if FAILED_COLUMN in cells.columns else pd.Series(True, index=cells.index)
    values = cells.loc[ok, features]
    nan_cols = int(values.isna().any().sum())
    nan_cells = int(values.isna().any(axis=1).sum())
    const_cols = int((values.nunique(dropna=True) <= 1).sum())
    out += [f"Among the {len(values)} successfully segmented cells: {nan_cells} cell(s) with an undefined (NaN) "
            f"feature, {nan_cols} feature(s) undefined for some cell, {const_cols} constant feature(s).", ""]

    glance = [f for f in GLANCE_FEATURES if f in features]
    treat = [c for c in ("Metadata_Compound", "Metadata_Concentration") if c in cells.columns]
    if glance and treat:
        medians = cells.loc[ok].groupby(treat)[glance].median().reset_index()
        out += ["## Median of a few features per treatment (segmented cells)", "", _table(medians), ""]
    return "\n".join(out)


__all__ = ["ingest_report"]

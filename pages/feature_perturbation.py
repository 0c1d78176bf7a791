"""Feature perturbation (paper Fig. 4c): push one CellProfiler feature of a real cell up and down."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import page_kit
from cp2image.analysis import panels, perturb
from cp2image.app_support import charts
from cp2image.app_support.warning_capture import call_collecting_warnings

DEFAULT_FEATURE = "Nuclei_AreaShape_Area"


@st.cache_data(show_spinner="Generating the sweep…", max_entries=64)
def run_sweep(_model, model_key: str, _cells: pd.DataFrame, dataset_key: str, row: int, feature: str,
              n_steps: int, span: float, unit: str, measure_back: bool) -> tuple[perturb.PerturbationResult, list[str]]:
    """One sweep per (model, cell, settings), with its warnings; the SD unit comes from the DMSO cells."""
    cells = _cells
    reference = cells.loc[cells["Metadata_Compound"] == "DMSO"] if unit == "sd" else None
    profile = cells.iloc[row][list(_model.feature_names)].astype(float)
    return call_collecting_warnings(perturb.sweep_feature, _model, profile, feature, mode="single", n_steps=n_steps, span=span,
                                    unit=unit, reference=reference, measure_back=measure_back)


st.title("Feature perturbation")
st.caption("Pick a real cell, choose one CellProfiler feature, and sweep it while every other feature stays "
           "fixed. Each generated image is measured back, so you can see whether the model honours the feature.")
loaded = page_kit.require_model()
model = loaded.model
dataset = page_kit.require_dataset()
cells = dataset.cells
missing = [f for f in model.feature_names if f not in cells.columns]
if missing:
    st.error(f"The dataset lacks {len(missing)} of the model's features (e.g. {', '.join(missing[:3])}); "
             "choose weights trained on this dataset's features.")
    st.stop()

row1 = st.columns([2, 1, 1, 3])
compounds = sorted(cells["Metadata_Compound"].astype(str).unique(), key=lambda c: (c != "DMSO", c.lower()))
compound = row1[0].selectbox("Compound", compounds, key="pert_compound")
in_compound = cells["Metadata_Compound"].astype(str) == compound
doses = sorted(cells.loc[in_compound, "Metadata_Concentration"].astype(float).unique())
dose = row1[1].selectbox("Concentration (µM)", doses, key="pert_dose", format_func=lambda c: f"{c:g}")
group_rows = np.flatnonzero((in_compound & np.isclose(cells["Metadata_Concentration"].astype(float), dose)).to_numpy())
cell_number = row1[2].number_input(f"Cell (1–{len(group_rows)})", min_value=1, max_value=int(len(group_rows)),
                                   value=1, step=1, key="pert_cell", help="Which cell of this compound and dose.")
row = int(group_rows[int(cell_number) - 1])
features = list(model.feature_names)
feature = row1[3].selectbox("Feature to sweep (type to search)", features, key="pert_feature",
                            index=features.index(DEFAULT_FEATURE) if DEFAULT_FEATURE in features else 0)
row2 = st.columns([1.8, 2, 2, 1.9, 3])
unit = row2[0].radio("Unit", ["sd", "raw"], key="pert_unit", horizontal=True,
                     format_func=lambda u: "SD of DMSO cells" if u == "sd" else "raw units")
if unit == "sd":
    span = row2[1].slider("Range (± SD)", 0.5, 5.0, 2.0, 0.5, key="pert_span_sd")
else:
    spread = float(np.nanstd(cells[feature].to_numpy(float))) or 1.0
    span = row2[1].number_input("Range (± raw units)", min_value=1e-9, value=float(f"{2 * spread:.3g}"),
                                key="pert_span_raw")
n_steps = row2[2].slider("Steps", 3, 15, 9, 2, key="pert_steps")
measure_back = row2[3].toggle("Measure back", value=True, key="pert_measure",
                              help="Segments each generated image and measures the same feature (cp2image.features).")
with row2[4]:
    channels = page_kit.channel_view(key="pert_channels")

real_col, info_col = st.columns([1, 6])
with real_col:
    page_kit.show_images(dataset.images[row:row + 1], ["real cell"], channels=channels, width=112)
with info_col:
    meta = cells.iloc[row]
    group = compound if dose == 0 else f"{compound} {dose:g} µM"
    st.markdown(f"**{group}** · plate {meta.get('Metadata_Plate', '?')}, well "
                f"{meta.get('Metadata_Well', '?')} · MoA {meta.get('Metadata_MoA', '?')}  \n"
                f"{feature} = **{float(meta[feature]):.4g}**")
try:
    result, notes = run_sweep(model, loaded.source, cells, str(dataset.path), row, feature, int(n_steps),
                              float(span), unit, bool(measure_back))
except ValueError as err:
    st.error(f"Cannot sweep {feature}: {err}")
    st.stop()
page_kit.show_notes(notes)
table = result.table()
captions = [f"{v:.3g}" for v in result.requested]
if result.measured is not None:
    captions = [f"{c} → {m:.3g}" if np.isfinite(m) else f"{c} → n/a" for c, m in zip(captions, result.measured)]
st.subheader(f"{feature}: requested → measured")
page_kit.show_images(result.images, captions, channels=channels, width=page_kit.strip_width(len(captions)))
page_kit.download_row(lambda: panels.perturbation_panel(result, channels=channels, scale_bar_um=page_kit.SCALE_BAR_UM),
                      stem=f"perturbation_{feature}", key="dl_pert_strip")
if result.measured is not None:
    rho = result.spearman_rho
    a, b = st.columns([1, 4])
    a.metric("Spearman ρ", "n/a" if rho is None else f"{rho:.2f}",
             help="Rank correlation of requested and measured values over the sweep.")
    if result.segmentation_failed is not None:
        a.caption(f"{int(np.sum(result.segmentation_failed))} of {len(table)} generated images failed segmentation")
    with b:
        st.plotly_chart(charts.sweep_chart(table, feature=feature, rho=rho), key="pert_chart")
        page_kit.download_row(lambda: panels.requested_vs_measured(table, rho=rho),
                              stem=f"perturbation_{feature}_measured", key="dl_pert_chart")
elif result.note:
    st.info(result.note)
if result.sd_source:
    st.caption(f"1 SD = {result.sd:.4g} ({result.sd_source}).")

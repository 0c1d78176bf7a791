"""Feature perturbation (paper Fig. 4c): push one CellProfiler feature of a cell up and down."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import page_kit
from cp2image.analysis import panels, perturb
from cp2image.analysis.feature_labels import format_pixels, format_value, labelled, scale_note, unit_symbol
from cp2image.app_support import vega_charts
from cp2image.app_support.warning_capture import call_collecting_warnings
from cp2image.data.columns import COMPOUND, CONCENTRATION, MOA, PLATE, WELL
from cp2image.warnings import OutsideReference

DEFAULT_FEATURE = "Nuclei_AreaShape_Area"
MOVED_SHOWN = 10  # partners listed under a coupled sweep
MODE_LABELS = {"coupled": "With its correlated features", "single": "This feature only"}


@st.cache_resource(show_spinner=False, max_entries=8)
def load_coupling(folder: str, mtime: float):
    """(coupling or None, problem or None) for a model folder; cached per file version."""
    from cp2image.analysis.coupling import load_coupling as load

    try:
        return load(folder), None
    except ValueError as err:  # CouplingError: corrupt or belongs to another model
        return None, str(err)


@st.cache_data(show_spinner="Generating the sweep…", max_entries=64)
def run_sweep(_model, model_key: str, _cells: pd.DataFrame, dataset_key: str, row: int, feature: str, mode: str,
              _coupling, coupling_key: str, n_steps: int, span: float, unit: str,
              measure_back: bool, refine: bool) -> tuple[perturb.PerturbationResult, list[str]]:
    """One sweep per (model, cell, settings), with its warnings; the SD unit comes from the DMSO cells."""
    cells = _cells
    reference = cells.loc[cells[COMPOUND] == "DMSO"]
    profile = cells.iloc[row][list(_model.feature_names)].astype(float)
    return call_collecting_warnings(perturb.sweep_feature, _model, profile, feature, mode=mode, coupling=_coupling,
                                    n_steps=n_steps, span=span, unit=unit, reference=reference,
                                    measure_back=measure_back, refine=refine)


st.title("Feature perturbation")
st.caption("Pick a cell, choose one CellProfiler feature and sweep it. **With its correlated features** (default), "
           "the other features follow as they do in real cells (a bigger nucleus also has a longer perimeter); "
           "**this feature only** is the paper's sweep. Each generated image is measured back: the **slope** says "
           "how much of the requested change the cell showed (1 = all of it, 0 = none).")
loaded = page_kit.require_model()
model = loaded.model
dataset = page_kit.require_dataset()
cells = dataset.cells
words = page_kit.crop_words(dataset)
pixel_size = page_kit.pixel_size_um(dataset)
missing = [f for f in model.feature_names if f not in cells.columns]
if missing:
    st.error(f"The dataset lacks {len(missing)} of the model's features (e.g. {', '.join(missing[:3])}); "
             "choose weights trained on this dataset's features.")
    st.stop()

folder = page_kit.model_directory(loaded)
coupling_file = folder / "feature_coupling.safetensors" if folder is not None else None
coupling, coupling_problem = (load_coupling(str(folder), coupling_file.stat().st_mtime)
                              if coupling_file is not None and coupling_file.is_file() else (None, None))

row1 = st.columns([2, 1, 1, 3])
compounds = sorted(cells[COMPOUND].astype(str).unique(), key=lambda c: (c != "DMSO", c.lower()))
compound = page_kit.url_widget(row1[0].selectbox, "Compound", key="pert_compound", options=compounds)
in_compound = cells[COMPOUND].astype(str) == compound
doses = sorted(cells.loc[in_compound, CONCENTRATION].astype(float).unique())
dose = page_kit.url_widget(row1[1].selectbox, "Concentration (µM)", key="pert_dose", options=doses,
                           format_func=lambda c: f"{c:g}")
group_rows = np.flatnonzero((in_compound & np.isclose(cells[CONCENTRATION].astype(float), dose)).to_numpy())
cell_number = page_kit.url_widget(row1[2].number_input, f"Cell (1–{len(group_rows)})", key="pert_cell",
                                  min_value=1, max_value=int(len(group_rows)), value=1, step=1,
                                  help="Which cell of this compound and dose.")
row = int(group_rows[int(cell_number) - 1])
features = list(model.feature_names)
feature = page_kit.url_widget(row1[3].selectbox, "Feature to sweep (type a readable or CellProfiler name)",
                              key="pert_feature", options=features, format_func=labelled,
                              index=features.index(DEFAULT_FEATURE) if DEFAULT_FEATURE in features else 0)

row2 = st.columns([2.3, 1.7, 1.8, 1.8, 2.0])
modes = ["coupled", "single"] if coupling is not None else ["single"]
mode = page_kit.url_widget(row2[0].radio, "Sweep", key="pert_mode", options=modes,
                           format_func=MODE_LABELS.get,
                           help="With its correlated features: the other features move by their expected change "
                                "given this one (covariance of the model's training cells). This feature only: "
                                "every other feature stays fixed, as in the paper.")
unit = page_kit.url_widget(row2[1].radio, "Unit", key="pert_unit", options=["sd", "raw"],
                           format_func=lambda u: "SD of DMSO cells" if u == "sd" else "raw units")
if unit == "sd":
    span = page_kit.url_widget(row2[2].slider, "Range (± SD)", key="pert_span_sd", min_value=0.5, max_value=5.0,
                               value=2.0, step=0.5)
else:
    spread = float(np.nanstd(cells[feature].to_numpy(float))) or 1.0
    span = page_kit.url_widget(row2[2].number_input, "Range (± raw units, pixels for areas)", key="pert_span_raw",
                               min_value=1e-9, value=float(f"{2 * spread:.3g}"))
n_steps = page_kit.url_widget(row2[3].slider, "Steps", key="pert_steps", min_value=3, max_value=15, value=9, step=2)
measure_back = page_kit.url_widget(row2[4].toggle, "Measure back", key="pert_measure", value=True,
                                   help="Segments each generated image and measures the same feature "
                                        "(cp2image.features).")
refine_default = bool(model.refinement is not None and model.refinement.sweeps) if model.can_refine else False
refine = page_kit.url_widget(st.toggle, "Refine each step with the model's critic", key="pert_refine",
                             value=refine_default, disabled=not model.can_refine or mode != "coupled",
                             help="Nudges the generator's input for a few gradient steps until the image → feature "
                                  "critic shipped with the model reads each image as the requested profile; the "
                                  "steps of the sweep are refined together, so the change stays smooth (about a "
                                  "second per sweep). On by default only where it measured better on held-out cells "
                                  "(the real-cell model; the Model card page has the control table). "
                                  "'This feature only' sweeps are never refined.")
refine = bool(refine and model.can_refine and mode == "coupled")
if not model.can_refine:
    st.caption("This model has no critic, so the sweep shows the generator's images as drawn.")
channels = page_kit.channel_view(key="pert_channels")
page_kit.show_url_notes()
if coupling is None:
    if coupling_problem and folder is not None:  # never show a server path: the folder's name is enough
        coupling_problem = coupling_problem.replace(str(folder), folder.name)
    why = coupling_problem or ("this model folder has no feature coupling (feature_coupling.safetensors)"
                               if folder is not None else "this model was not loaded from a folder")
    st.info(f"Only **this feature only** is offered: {why}. Fit one with "
            "`cp2image perturb --fit-coupling --model MODEL_FOLDER --data DATASET`.", icon=":material/info:")

real_col, info_col = st.columns([1, 6])
with real_col:
    page_kit.show_images(dataset.images[row:row + 1], [words.cell], channels=channels, width=112)
with info_col:
    meta = cells.iloc[row]
    group = compound if dose == 0 else f"{compound} {dose:g} µM"
    value = float(meta[feature])
    pixels = format_pixels(feature, value)
    st.markdown(f"**{words.adjective} {group}**".replace("** ", "**") + f" · plate {meta.get(PLATE, '?')}, "
                f"well {meta.get(WELL, '?')} · MoA {meta.get(MOA, '?')}  \n"
                f"{labelled(feature)} = **{format_value(feature, value, pixel_size_um=pixel_size)}**"
                + (f" ({pixels})" if pixels and pixel_size else "")
                + (f" · {scale_note(feature)}" if scale_note(feature) and scale_note(feature) != "no unit" else ""))

coupling_key = "none" if coupling is None else coupling.normalisation_digest or str(coupling.n_cells)
try:
    result, notes = run_sweep(model, loaded.source, cells, str(dataset.path), row, feature, mode, coupling,
                              coupling_key, int(n_steps), float(span), unit, bool(measure_back), refine)
except ValueError as err:
    st.error(f"Cannot sweep {feature}: {err}")
    st.stop()

notice = result.describe_clipping(lambda v: format_value(feature, v, pixel_size_um=pixel_size))
if notice:  # shown where it is seen, never folded away
    st.warning(notice + " Steps marked * show the clipped value.", icon=":material/content_cut:")
page_kit.show_notes(notes, shown_elsewhere=[OutsideReference] if result.n_clipped else [])

if result.measured is not None:
    slope, rho = result.slope, result.spearman_rho
    a, b, c = st.columns([1, 1, 3])
    a.metric("Slope", "n/a" if slope is None else f"{slope:.2f}",
             help="Measured change ÷ requested change over the sweep (least squares). 1: the cell changed by what "
                  "was asked; 0: the model ignored the request. Angles are compared on their 180° period.")
    b.metric("Spearman ρ", "n/a" if rho is None else f"{rho:.2f}",
             help="Rank correlation of requested and measured values: does the measurement move in the right "
                  "direction at all? ρ = 1 with a slope near 0 is a cell that barely changed.")
    failed = int(np.sum(result.segmentation_failed)) if result.segmentation_failed is not None else 0
    c.caption(f"{MODE_LABELS[mode]}{', refined with the critic' if refine else ''}. " + (f"{failed} of {len(result.requested)} generated images failed "
                                          "segmentation (n/a). " if failed else "")
              + "Slope 1 and ρ 1 together mean the generated cell follows the request.")
elif result.note:
    st.info(result.note)

unit_text = unit_symbol(feature, pixel_size_um=pixel_size) or scale_note(feature)
unit_text = "" if unit_text == "no unit" else f" ({unit_text})"
st.subheader(f"{labelled(feature)}: requested → measured{unit_text}")
captions = perturb.step_captions(result, pixel_size_um=pixel_size, with_unit=False)  # unit in the heading: no wrap
# ≥ 93 px per crop keeps "1,990* → 1,790" on one line; more than 9 steps flow onto a second row
page_kit.show_images(result.images, captions, channels=channels, width=max(93, page_kit.strip_width(len(captions))))
page_kit.download_row(lambda: panels.perturbation_panel(result, channels=channels, scale_bar_um=page_kit.SCALE_BAR_UM),
                      stem=f"perturbation_{feature}", key="dl_pert_strip")

table = result.table()
if result.measured is not None:
    st.altair_chart(vega_charts.sweep_chart(table, feature=feature, rho=result.spearman_rho, slope=result.slope,
                                            pixel_size_um=pixel_size), key="pert_chart", width="stretch")
    page_kit.download_row(lambda: panels.requested_vs_measured(table, rho=result.spearman_rho, slope=result.slope),
                          stem=f"perturbation_{feature}_measured", key="dl_pert_chart")

if mode == "coupled":
    moved = result.moved_with(MOVED_SHOWN)
    st.subheader("Moved with it")
    st.caption(f"The {MOVED_SHOWN} other features that changed most over the sweep (first → last step), "
               "in their units and in SDs of the model's training cells. Every other feature moved too, "
               "by its expected change; download the full list as CSV.")
    shown = pd.DataFrame({
        "feature": [labelled(f) for f in moved["feature"]],
        "first → last step": [f"{format_value(f, a, pixel_size_um=pixel_size)} → "
                              f"{format_value(f, z, pixel_size_um=pixel_size)}"
                              for f, a, z in zip(moved["feature"], moved["from"], moved["to"])],
        "change (SD)": moved["shift_sd"].round(2),
        "correlation with the swept feature": moved["correlation"].round(2),
    })
    st.dataframe(shown, hide_index=True, key="pert_moved")
    st.download_button("CSV of every feature's change", data=lambda: result.moved.to_csv(index=False).encode(),
                       file_name=f"moved_with_{feature}.csv", mime="text/csv", key="dl_pert_moved",
                       icon=":material/download:", on_click="ignore")
    if result.others_clipped is not None and result.others_clipped.any():
        st.caption(f"{int(result.others_clipped.max())} other feature value(s) per step at most were held at the "
                   "edge of their valid range.")
if result.sd_source:
    sd_text = format_value(feature, result.sd, pixel_size_um=pixel_size) if result.sd is not None else "?"
    st.caption(f"1 SD = {sd_text} ({result.sd_source}). Valid range of this feature: "
               f"{format_value(feature, result.domain[0], pixel_size_um=pixel_size)} to "
               f"{format_value(feature, result.domain[1], pixel_size_um=pixel_size)}.")

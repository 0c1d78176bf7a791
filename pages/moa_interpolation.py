"""MoA interpolation (paper Fig. 5a): step a DMSO cell towards a mechanism of action."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import page_kit
from cp2image.analysis import panels
from cp2image.analysis.interpolate import InterpolationResult, interpolate_to_moa
from cp2image.app_support import charts, report_panels
from cp2image.app_support.warning_capture import call_collecting_warnings

PREFERRED = ("Actin disruptors", "Microtubule stabilizers", "Eg5 inhibitors")


@st.cache_data(show_spinner="Interpolating…", max_entries=64)
def interpolate(_model, model_key: str, _cells: pd.DataFrame, _images: np.ndarray, dataset_key: str,
                moa: str, dims: int) -> tuple[InterpolationResult, list[str]]:
    return call_collecting_warnings(interpolate_to_moa, _model, _cells, target_moa=moa, dims_per_step=dims,
                                    real_images=_images)


st.title("MoA interpolation")
st.caption("Start from the DMSO cell closest to the DMSO mean; at each step replace the features that differ most "
           "from the target cell (closest to its MoA's mean) by the target's values. The number under each image "
           "is the cosine similarity to the target profile.")
loaded = page_kit.require_model()
model = loaded.model
dataset = page_kit.require_dataset()
cells = dataset.cells
if "Metadata_MoA" not in cells.columns:
    st.info("This dataset has no Metadata_MoA column, so there is nothing to interpolate towards.")
    st.stop()
moas = sorted(m for m in cells["Metadata_MoA"].dropna().astype(str).unique() if m != "DMSO")
if not moas:
    st.info("No treated MoAs in this dataset.")
    st.stop()

left, mid, right = st.columns([3, 2, 2])
default = [m for m in PREFERRED if m in moas] or moas[:1]
targets = left.multiselect("Target MoAs", moas, default=default, key="moa_targets")
p = len(model.feature_names)
dims = mid.slider("Features replaced per step", 5, max(5, min(200, p)), min(50, max(5, p // 2)), 5, key="moa_dims",
                  help="The paper replaces 50 of ~450 features per step.")
with right:
    channels = page_kit.channel_view(key="moa_channels")
if not targets:
    st.info("Choose one or more target MoAs.")
    st.stop()

results: dict[str, InterpolationResult] = {}
notes: dict[str, list[str]] = {}
for moa in targets:
    try:
        results[moa], notes[moa] = interpolate(model, loaded.source, cells, dataset.images, str(dataset.path), moa,
                                               int(dims))
    except ValueError as err:
        st.error(f"{moa}: {err}")

for k, (moa, result) in enumerate(results.items()):
    st.subheader(f"DMSO → {moa}")
    page_kit.show_notes(notes[moa])
    images = np.concatenate([result.source_image[None], result.images, result.target_image[None]])
    captions = ["real DMSO"] + [f"cos {c:.2f}" for c in result.cosine] + ["real target"]
    page_kit.show_images(images, captions, channels=channels, width=page_kit.strip_width(len(images), largest=96))
    page_kit.download_row(lambda r=result: panels.interpolation_panel(r, channels=channels, scale_bar_um=page_kit.SCALE_BAR_UM),
                          stem=f"interpolation_{moa}", key=f"dl_moa_{k}")

if results:
    st.subheader("Cosine similarity to the target")
    tables = {m: r.table() for m, r in results.items()}
    st.plotly_chart(charts.cosine_chart(tables), key="moa_cosine_chart")
    page_kit.download_row(lambda: report_panels.cosine_curves_panel(tables), stem="interpolation_cosine",
                          key="dl_moa_cosine")
    st.caption(f"Cosine is measured in the {next(iter(results.values())).cosine_space}.")

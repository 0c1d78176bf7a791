"""MoA interpolation (paper Fig. 5a): step a DMSO cell towards a mechanism of action."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import page_kit
from cp2image.analysis.domain import beyond_training_range
from cp2image.app_support import vega_charts
from cp2image.app_support.input_range import plain_warning
from cp2image.app_support.warning_capture import call_collecting_warnings
from cp2image.data.columns import MOA

PREFERRED = ("Actin disruptors", "Microtubule stabilizers", "Eg5 inhibitors")


@st.cache_data(show_spinner="Interpolating…", max_entries=64)
def interpolate(_model, model_key: str, _cells: pd.DataFrame, _images: np.ndarray, dataset_key: str,
                moa: str, dims: int):
    from cp2image.analysis.interpolate import interpolate_to_moa

    return call_collecting_warnings(interpolate_to_moa, _model, _cells, target_moa=moa, dims_per_step=dims,
                                    real_images=_images)


st.title("MoA interpolation")
st.caption("Start from the DMSO cell closest to the DMSO mean; at each step replace the features that differ most "
           "from the target cell (closest to its MoA's mean) by the target's values. The number under each image "
           "is the cosine similarity to the target profile.")
COSINE_SENTENCE = ("**cos** says how far the profile has turned from the DMSO cell towards the target: 0 at the DMSO "
                   "cell, 1 when every feature has the target's value, 0.9 when the features replaced so far carry "
                   "most of the difference. It is computed on the profiles given to the model (each feature "
                   "standardised), not measured on the images.")
loaded = page_kit.require_model()
model = loaded.model
dataset = page_kit.require_dataset()
cells = dataset.cells
if MOA not in cells.columns:
    st.info(f"This dataset has no {MOA} column, so there is nothing to interpolate towards.")
    st.stop()
moas = sorted(m for m in cells[MOA].dropna().astype(str).unique() if m != "DMSO")
if not moas:
    st.info("No treated MoAs in this dataset.")
    st.stop()

words = page_kit.crop_words(dataset)
left, right = st.columns([5, 3])  # the MoA names and the channel picker need the room (1280 px screens)
default = [m for m in PREFERRED if m in moas] or moas[:1]
with left:
    targets = page_kit.url_widget(st.multiselect, "Target MoAs", key="moa_targets", options=moas, default=default)
with right:
    channels = page_kit.channel_view(key="moa_channels")
p = len(model.feature_names)
mid, size_col, _ = st.columns([3, 2, 3])
with mid:
    dims = page_kit.url_widget(st.slider, "Features replaced per step", key="moa_dims", min_value=5,
                               max_value=max(5, min(200, p)), value=min(50, max(5, p // 2)), step=5,
                               help="The paper replaces 50 of ~450 features per step.")
with size_col:
    size = page_kit.url_widget(st.select_slider, "Image size (px)", key="moa_size", options=[96, 112, 128, 160],
                               value=112, help="Display size of each crop; the strip wraps onto more rows when needed.")
page_kit.show_url_notes()
st.caption(COSINE_SENTENCE)
if not targets:
    st.info("Choose one or more target MoAs.")
    st.stop()

results: dict = {}
notes: dict[str, list] = {}
for moa in targets:
    try:
        results[moa], notes[moa] = interpolate(model, loaded.source, cells, dataset.images, str(dataset.path), moa,
                                               int(dims))
    except ValueError as err:
        st.error(f"{moa}: {err}")

for k, (moa, result) in enumerate(results.items()):
    st.subheader(f"DMSO → {moa}")
    outside = beyond_training_range(model, result.profiles)
    if outside:  # which features were capped, in plain words; the model's own note stays below, folded
        st.warning(plain_warning(outside, limit=model.feature_statistics.clip_sigma,
                                 why="the target cell (or the DMSO cell) itself has these extreme values, and each "
                                     "step copies some of the target's values into the profile."),
                   icon=":material/warning:")
    page_kit.show_notes(notes[moa])
    images = np.concatenate([result.source_image[None], result.images, result.target_image[None]])
    start, target = (f"{words.adjective} DMSO".strip(), f"{words.adjective} target".strip())
    captions = [start] + [f"cos {c:.2f}" for c in result.cosine] + [target]  # short: one line under each crop
    page_kit.show_images(images, captions, channels=channels, width=int(size))

    def strip_panel(r=result):
        from cp2image.analysis import panels

        return panels.interpolation_panel(r, channels=channels, scale_bar_um=page_kit.SCALE_BAR_UM)

    page_kit.download_row(strip_panel, stem=f"interpolation_{moa}", key=f"dl_moa_{k}")

if results:
    st.subheader("Cosine similarity to the target")
    tables = {m: r.table() for m, r in results.items()}
    st.altair_chart(vega_charts.cosine_chart(tables), key="moa_cosine_chart", width="stretch")

    def cosine_panel():
        from cp2image.analysis import panels

        return panels.cosine_curves_panel(tables)

    page_kit.download_row(cosine_panel, stem="interpolation_cosine", key="dl_moa_cosine")
    st.caption(f"Cosine is measured in the {next(iter(results.values())).cosine_space}.")

"""PCA explorer (paper Fig. 5b/c): DMSO and a compound's doses in PCA; click to generate a cell."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import page_kit
from cp2image.app_support import charts
from cp2image.analysis.domain import beyond_training_range
from cp2image.analysis.space import drawn
from cp2image.analysis.trajectory import line_angle_degrees, nearest_concentrations
from cp2image.app_support.input_range import plain_warning
from cp2image.app_support.pca_click import click_from_text, click_to_text, clicked_point, dose_direction_sentence
from cp2image.app_support.warning_capture import call_collecting_warnings
from cp2image.data.columns import COMPOUND

CHART_KEY = "pca_chart"
CLICK_PARAM = "pca_click"  # the click's place in the URL (not a widget, so written here)
HAD_SELECTION = "_pca_had_selection"
DEFAULT_COMPOUND = "latrunculin B"
LINE_POINTS = 41  # markers along the red line: clicking anywhere on it selects one


@st.cache_resource(show_spinner="Fitting the PCA…", max_entries=16)
def fit_trajectory(_cells: pd.DataFrame, dataset_key: str, compound: str, features: tuple[str, ...]):
    from cp2image.analysis.trajectory import CompoundTrajectory

    return CompoundTrajectory.fit(_cells, compound=compound, control="DMSO", features=list(features))


@st.cache_resource(max_entries=16, show_spinner=False)
def pca_figure(_trajectory, trajectory_key: str, end: float):
    """The chart for one compound and line end, built once (Plotly's figure validation is slow)."""
    line = _trajectory.line(n_points=LINE_POINTS, end_concentration=end)
    return line, charts.pca_scatter(_trajectory.scores, line[["t", "PC1", "PC2"]], group_means=_trajectory.group_means,
                                    explained=_trajectory.explained_variance_ratio, line_name=f"DMSO → {end:g} µM line")


@st.cache_data(show_spinner="Generating along the line…", max_entries=32)
def line_images(_model, model_key: str, _trajectory, trajectory_key: str, end: float,
                n_points: int) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    line = _trajectory.line(n_points=n_points, end_concentration=end)
    images, notes = call_collecting_warnings(_model.generate, line[list(_model.feature_names)], **drawn(_model))
    return line, images, notes


def click_from_url(compound: str):
    """The click a shared link holds, or None; a stale or broken one is removed with a note."""
    text = st.query_params.get(CLICK_PARAM)
    if not text:
        return None
    try:
        return click_from_text(text, compound=compound)
    except ValueError as err:
        del st.query_params[CLICK_PARAM]
        page_kit.note_url_problem(f"The link's clicked point could not be used ({err}); click the chart instead.")
        return None


def why_out_of_range(click, t: float) -> str:
    if click.on_line:
        return ("this point of the red line is a straight-line blend of the DMSO and top-dose averages; a feature "
                "whose average moves a lot with dose goes far out there.")
    if click.cell is not None:
        return "this cell itself is unusual: its own measured profile has these extreme values."
    return ("the click is away from the cells, and the inverse PCA turns distance in the plot into large values of "
            "every feature that PC1 and PC2 weigh heavily.")


st.title("PCA explorer")
st.caption("Cells of DMSO and one compound's concentrations in the first two principal components of their "
           "CellProfiler profiles. The red line runs from the DMSO mean to the chosen concentration's mean; "
           "click any point on it, or any cell, to generate that profile.")
loaded = page_kit.require_model()
model = loaded.model
dataset = page_kit.require_dataset()
words = page_kit.crop_words(dataset)
cells = dataset.cells
features = tuple(model.feature_names)
missing = [f for f in features if f not in cells.columns]
if missing:
    st.error(f"The dataset lacks {len(missing)} of the model's features (e.g. {', '.join(missing[:3])}).")
    st.stop()

compounds = sorted(c for c in cells[COMPOUND].astype(str).unique() if c != "DMSO")
if not compounds or "DMSO" not in set(cells[COMPOUND].astype(str)):
    st.info("This dataset needs DMSO controls and at least one compound for a PCA trajectory.")
    st.stop()
top = st.columns([2.2, 1.6, 2.2, 3])
with top[0]:
    compound = page_kit.url_widget(st.selectbox, "Compound", key="pca_compound", options=compounds,
                                   index=compounds.index(DEFAULT_COMPOUND) if DEFAULT_COMPOUND in compounds else 0)
try:
    trajectory = fit_trajectory(cells, str(dataset.path), compound, features)
except ValueError as err:
    st.error(f"Cannot fit a PCA for {compound}: {err}")
    st.stop()
trajectory_key = f"{dataset.path}|{compound}|{hash(features)}"
doses = trajectory.concentrations
with top[1]:
    end = page_kit.url_widget(st.selectbox, "Line ends at (µM)", key="pca_end", options=doses, index=len(doses) - 1,
                              format_func=lambda c: f"{c:g}")
with top[2]:
    method = page_kit.url_widget(st.radio, "Off-line clicks", key="pca_method", options=["residual", "line"],
                                 horizontal=True,
                                 help="residual: inverse PCA of the click plus the nearest dataset cell's off-plane "
                                      "detail; line: project the click onto the red line.")
with top[3]:
    channels = page_kit.channel_view(key="pca_channels")
page_kit.show_url_notes()

line, figure = pca_figure(trajectory, trajectory_key, end)
line_curve = len(figure.data) - 1
chart_col, cell_col = st.columns([3, 2], gap="medium")
with chart_col:
    event = st.plotly_chart(figure, on_select="rerun", selection_mode="points", key=CHART_KEY)
    st.caption(dose_direction_sentence(line_angle_degrees(trajectory.group_means, end), compound=compound, end=end))
click = clicked_point(event, line_curve=line_curve)
if click is not None:  # a click on the chart: it becomes the link's click
    st.query_params[CLICK_PARAM] = click_to_text(click, compound=compound)
    st.session_state[HAD_SELECTION] = True
elif st.session_state.pop(HAD_SELECTION, False):  # the user cleared the selection
    st.query_params.pop(CLICK_PARAM, None)
else:
    click = click_from_url(compound)
    page_kit.show_url_notes()
with cell_col:
    if click is None:
        st.info("Click a point on the red line (or any cell) to generate the cell at that place.")
    else:
        use = "line" if click.on_line else method
        profile = trajectory.profile_at(click.pc1, click.pc2, method=use, end_concentration=end)
        frame = profile.to_frame().T[list(features)]
        generated = model.generate_from_normalised(model.normalise(frame, warn=False))
        t = trajectory.line_parameter(click.pc1, click.pc2, end)
        nearest = nearest_concentrations(trajectory.group_means, click.pc1, click.pc2, k=2)
        if click.on_line:
            where = f"t = {t:.2f} on the line"
        elif click.cell is not None:
            where = f"cell {click.cell} at PC ({click.pc1:.1f}, {click.pc2:.1f})"
        else:
            where = f"PC ({click.pc1:.2f}, {click.pc2:.2f})"
        st.subheader("Generated cell")
        st.caption(f"{where} · method: {use}")
        outside = beyond_training_range(model, frame)
        if outside:
            st.warning(plain_warning(outside, limit=model.feature_statistics.clip_sigma, why=why_out_of_range(click, t)),
                       icon=":material/warning:")
        own = None
        if click.cell is not None and click.cell in cells.index:
            own = dataset.images[cells.index.get_indexer([click.cell])]
        if own is not None:  # the clicked cell's own crop beside the image generated from its profile
            page_kit.show_images(np.concatenate([generated, own]), ["generated", f"this {words.cell}"],
                                 channels=channels, width=150)
        else:
            page_kit.show_images(generated, ["generated"], channels=channels, width=170)
        real_sets = []
        for dose in nearest:
            labels = trajectory.real_examples(dose, n=3, seed=0)
            real_sets.append((dose, dataset.images[cells.index.get_indexer(labels)]))
        for dose, crops in real_sets:
            label = "DMSO" if dose == 0 else f"{compound} {dose:g} µM"
            st.markdown(f"{words.cells.capitalize()} · **{label}**")
            page_kit.show_images(crops, ["DMSO" if dose == 0 else f"{dose:g} µM"] * len(crops), channels=channels,
                                 width=100)

        def click_panel():
            from cp2image.analysis import panels

            rows = [generated] + [crops for _, crops in real_sets]
            caps = [["generated"]] + [[("DMSO" if d == 0 else f"{d:g} µM")] * len(c) for d, c in real_sets]
            data = pd.DataFrame([{"PC1": click.pc1, "PC2": click.pc2, "t": t, "method": use,
                                  "nearest_concentrations_uM": ";".join(f"{d:g}" for d in nearest)}])
            data = pd.concat([data, profile.to_frame().T.reset_index(drop=True)], axis=1)
            return panels.image_grid(rows, captions=caps, row_labels=["generated"] + [
                f"{words.adjective} DMSO".strip() if d == 0 else f"{words.adjective} {d:g} µM".strip()
                for d, _ in real_sets], channels=channels, data=data, title=f"{compound}: {where}")

        page_kit.download_row(click_panel, stem="pca_generated_cell", key="dl_pca_cell", compact=True)


def scatter_panel():
    from cp2image.analysis import panels

    return panels.pca_scatter(trajectory.scores, line=line, point=None if click is None else (click.pc1, click.pc2),
                              title=f"DMSO and {compound}")


with chart_col:
    page_kit.download_row(scatter_panel, stem=f"pca_{compound}", key="dl_pca_chart")

st.subheader(f"Along the line: DMSO → {compound} {end:g} µM")
n_points = page_kit.url_widget(st.slider, "Generated points", key="pca_strip_points", min_value=3, max_value=15,
                               value=9)
page_kit.show_url_notes()
strip_line, strip_images, strip_notes = line_images(model, loaded.source, trajectory, trajectory_key, end,
                                                   int(n_points))
page_kit.show_notes(strip_notes)
real_rows = []
for dose in [0.0, *doses]:
    labels = trajectory.real_examples(dose, n=1, seed=1)
    real_rows.append(("DMSO" if dose == 0 else f"{dose:g} µM", dataset.images[cells.index.get_indexer(labels)]))
st.markdown(f"{words.cells.capitalize()}, one per concentration")
page_kit.show_images(np.concatenate([c for _, c in real_rows]), [label for label, _ in real_rows],
                     channels=channels, width=100)
st.markdown("Generated from profiles on the red line")
page_kit.show_images(strip_images, [f"t = {t:.2f}" for t in strip_line["t"]], channels=channels,
                     width=page_kit.strip_width(len(strip_images), largest=100))


def strip_panel():
    from cp2image.analysis import panels

    return panels.trajectory_panel(real_rows, strip_line, strip_images, channels=channels,
                                   scale_bar_um=page_kit.SCALE_BAR_UM, title=f"DMSO → {compound} {end:g} µM")


page_kit.download_row(strip_panel, stem=f"trajectory_{compound}", key="dl_pca_strip")

"""Correlation report (paper Fig. 4a/b): which CellProfiler features survive generation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import page_kit
from cp2image.analysis.feature_labels import labelled, readable_name
from cp2image.app_support import selection_charts, vega_charts
from cp2image.evaluation.files import (
    CORRELATION_FILE,
    HEADLINE_HELP,
    HEADLINE_LABELS,
    defined,
    feature_pairs,
    format_headline,
    image_quality_tables,
    locate_evaluation,
    read_evaluation,
    undefined_reasons,
)
from cp2image.assets import bundled_model_dir

METRICS_PER_ROW = 4  # more than four metrics side by side truncate their labels at 1280 px


def _shown_path(path) -> str:
    """Repository-relative path for display: a hosted page should not reveal server folders."""
    root = bundled_model_dir().parents[2]
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


def _readable(name: str) -> str:
    try:
        return readable_name(name)
    except ValueError:
        return name


@st.cache_data(show_spinner="Reading the evaluation…", max_entries=8)
def load_report(directory: str, stamp: float):
    return read_evaluation(directory)


@st.cache_data(max_entries=64)
def load_pairs(path: str, stamp: float, feature: str):
    return feature_pairs(path, feature)


def ranked_table(rows: pd.DataFrame, *, key: str) -> None:
    """r first (so it is never cut off), then the readable name, then the CellProfiler name."""
    view = pd.DataFrame({"r": rows["pearson_r"].to_numpy(float), "Feature": [_readable(f) for f in rows["feature"]],
                         "CellProfiler name": rows["feature"].astype(str)})
    st.dataframe(view, hide_index=True, height=300, key=key, width="stretch", column_config={
        "r": st.column_config.NumberColumn("r", format="%.2f", width=48, help="Pearson r, real vs generated"),
        "Feature": st.column_config.TextColumn("Feature", width="medium"),
        "CellProfiler name": st.column_config.TextColumn("CellProfiler name", width="medium"),
    })


st.title("Correlation report")
st.caption("Every held-out cell is measured twice: on its real image and on the image generated from its profile. "
           "Pearson r across cells, per feature, says how well the model preserves that feature.")
loaded, _ = page_kit.load_current_model()
model_dir = page_kit.model_directory(loaded) if loaded is not None else None
candidates = [d for d in (model_dir, bundled_model_dir()) if d is not None]
found = next((hit for hit in map(locate_evaluation, candidates) if hit is not None), None)
if found is None:
    st.info(f"No evaluation found for {', '.join(f'`{_shown_path(d)}`' for d in candidates)}. Run `cp2image evaluate` "
            "on the model and save its output to the model's `evaluation/` folder.")
    st.stop()
directory = found
try:
    report = load_report(str(directory), (directory / CORRELATION_FILE).stat().st_mtime)
except (OSError, ValueError) as err:
    st.error(f"The evaluation in `{_shown_path(directory)}` cannot be read: "
             f"{str(err).replace(str(directory), _shown_path(directory))}")
    st.stop()
evaluated = directory.parent
if model_dir is None or evaluated != model_dir:
    st.warning(f"Showing the evaluation of `{evaluated.name}`, not of the loaded weights "
               f"({loaded.source if loaded else 'none'}).")
st.caption(f"Source: `{_shown_path(directory / CORRELATION_FILE)}`")

table = report.correlation
finite = defined(table)
threshold = page_kit.url_widget(st.slider, "Threshold on r", key="corr_threshold", min_value=0.0, max_value=0.95,
                                value=0.5, step=0.05)
page_kit.show_url_notes()
numbers = report.headline()
shown = {f"Features with r > {threshold:g}": (f"{100 * float(np.mean(finite['pearson_r'] > threshold)):.0f}%",
                                              f"Share of the {len(finite)} features that have an r."),
         "Median r": (f"{finite['pearson_r'].median():.2f}", "Median over the features that have an r.")}
for key, label in HEADLINE_LABELS.items():
    if key in numbers and len(shown) < 8:
        shown[label] = (format_headline(key, numbers[key]), HEADLINE_HELP.get(key))
items = list(shown.items())
for start in range(0, len(items), METRICS_PER_ROW):
    for column, (label, (value, help_text)) in zip(st.columns(METRICS_PER_ROW), items[start:start + METRICS_PER_ROW]):
        column.metric(label, value, help=help_text)

undefined = undefined_reasons(table)
st.markdown(
    f"**Reading these numbers.** r near 1 means the feature measured on the generated image follows the real "
    f"cell's value; r near 0 means the model does not carry that feature (the paper reports over 30% of features "
    f"above 0.5 on real BBBC021). r exists for {len(finite)} of the {len(table)} features: "
    f"{'the other ' + str(len(undefined)) + ' have the same value in every cell on one side, and a correlation needs variation on both' if len(undefined) else 'every feature varies on both sides'}. "
    "FID, KID and the Fréchet distances compare the whole set of generated cells with the real ones "
    "(0 = indistinguishable, lower is better); they are only comparable between models evaluated the same way here."
)
if len(undefined):
    with st.expander(f"The {len(undefined)} features without an r"):
        st.dataframe(pd.DataFrame({"Feature": [labelled(f) for f in undefined["feature"]],
                                   "Why there is no r": undefined["reason"]}), hide_index=True, key="corr_undefined")
inception = report.metrics.get("inception")
if isinstance(inception, dict) and inception.get("available"):
    st.caption("FID/KID use a TorchScript Inception-v3 whose equality with the standard 2015 weights is unverified; "
               "compare them between models evaluated here, not with published FIDs.")

hist_col, rank_col = st.columns([1, 1], gap="medium")
with hist_col:  # Altair: its brush comes back as a range of r, and the brushed bars light up in the browser
    hist_event = st.altair_chart(selection_charts.correlation_histogram(table, threshold=threshold), key="corr_hist",
                                 on_select="rerun", selection_mode=selection_charts.BRUSH, width="stretch")


def histogram_panel():
    from cp2image.analysis import panels

    return panels.correlation_histogram_panel(table, threshold=threshold)


def ranked_panel(rows: pd.DataFrame, title: str):
    from cp2image.analysis import panels

    return panels.ranked_features_panel(rows, title=title)


with hist_col:
    # half-width column: four buttons side by side cut "PNG" to "P…" at 1280 px
    page_kit.download_row(histogram_panel, stem="correlation_histogram", key="dl_corr_hist", compact=True)
with rank_col:
    n = page_kit.url_widget(st.number_input, "Features to list", key="corr_n", min_value=5, max_value=100, value=15,
                            step=5)
    best, worst = st.tabs(["Best preserved", "Worst preserved"])
    top = finite.head(int(n)).reset_index(drop=True)
    bottom = finite.tail(int(n)).iloc[::-1].reset_index(drop=True)
    with best:
        ranked_table(top, key="corr_top_table")
        page_kit.download_row(lambda: ranked_panel(top, f"{int(n)} best-preserved features"),
                              stem="correlation_top", key="dl_corr_top", compact=True)
    with worst:
        ranked_table(bottom, key="corr_bottom_table")
        page_kit.download_row(lambda: ranked_panel(bottom, f"{int(n)} worst-preserved features"),
                              stem="correlation_bottom", key="dl_corr_bottom", compact=True)
page_kit.show_url_notes()

brushed = selection_charts.selected_range(hist_event)
if brushed is None:
    st.caption("Drag across the histogram to list the features in that range of r (double-click clears it).")
else:
    low, high = brushed
    chosen = selection_charts.features_in_range(table, low, high)
    title = f"{len(chosen)} features with r from {low:.2f} to {high:.2f}"
    st.markdown(f"**{title}** (the bars you selected)")
    if len(chosen):
        ranked_table(chosen, key="corr_brushed_table")
        page_kit.download_row(lambda: ranked_panel(chosen, title), stem="correlation_selected", key="dl_corr_brushed")

quality = image_quality_tables(report.metrics)
if quality is not None:
    stats, puncta = quality
    st.subheader("What CellProfiler features miss")
    st.caption("Three image statistics over the same held-out cells, real beside generated: a frame drawn at the "
               "crop's edge, straight streaks, and the small actin spots latrunculin B leaves.")
    for column, (_, row) in zip(st.columns(len(stats)), stats.iterrows()):
        shown = {k: "n/a" if pd.isna(row[k]) else f"{row[k]:.2f}" for k in ("real", "generated")}
        column.metric(f"{row['statistic']}, generated", shown["generated"], help=row["how to read it"])
        column.caption(f"real crops: {shown['real']}")
    if puncta is not None:

        def puncta_panel():
            from cp2image.analysis import panels

            return panels.puncta_by_class_panel(puncta)

        columns = {"class": st.column_config.TextColumn("Class"), "n": st.column_config.NumberColumn("Cells"),
                   "real": st.column_config.NumberColumn("Puncta per crop, real", format="%.1f"),
                   "generated": st.column_config.NumberColumn("Puncta per crop, generated", format="%.1f")}
        st.dataframe(puncta, hide_index=True, key="corr_puncta", width="stretch", height=35 * (len(puncta) + 1) + 3,
                     column_config=columns)
        page_kit.download_row(puncta_panel, stem="actin_puncta_by_class", key="dl_corr_puncta")

st.subheader("One feature: real vs generated")
if report.pairs_path is None:
    st.info(f"No `pairs.parquet` in `{_shown_path(directory)}`, so per-cell scatter plots are unavailable.")
    st.stop()
names = list(table["feature"])
default = names.index("Nuclei_AreaShape_Area") if "Nuclei_AreaShape_Area" in names else 0
feature = page_kit.url_widget(st.selectbox, "Feature (type a readable or CellProfiler name to filter)",
                              key="corr_feature", options=names, index=default, format_func=labelled)
page_kit.show_url_notes()
pairs = load_pairs(str(report.pairs_path), report.pairs_path.stat().st_mtime, feature)
if pairs.empty:
    st.info(f"No per-cell values stored for {labelled(feature)}.")
    st.stop()
r = float(table.loc[table["feature"] == feature, "pearson_r"].iloc[0])
dataset, _ = page_kit.dataset_or_problem()
pixel_size = page_kit.pixel_size_um(dataset) if dataset is not None else None
st.altair_chart(vega_charts.feature_scatter(pairs, feature, r=r, pixel_size_um=pixel_size), key="corr_scatter",
                width="stretch")


def scatter_panel():
    from cp2image.analysis import panels

    return panels.feature_scatter_panel(pairs, feature, r=r)


page_kit.download_row(scatter_panel, stem=f"correlation_{feature}", key="dl_corr_scatter")

"""Correlation report (paper Fig. 4a/b): which CellProfiler features survive generation."""
from __future__ import annotations

import numpy as np
import streamlit as st

import page_kit
from cp2image.app_support import charts, report_panels
from cp2image.app_support.evaluation_files import (
    HEADLINE_LABELS,
    defined,
    feature_pairs,
    locate_evaluation,
    read_evaluation,
)
from cp2image.assets import bundled_model_dir


def _shown_path(path) -> str:
    """Repository-relative path for display: a hosted page should not reveal server folders."""
    root = bundled_model_dir().parents[2]
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name


@st.cache_data(show_spinner="Reading the evaluation…", max_entries=8)
def load_report(directory: str, table_file: str, stamp: float):
    return read_evaluation(directory, table_file=table_file)


@st.cache_data(max_entries=64)
def load_pairs(path: str, stamp: float, feature: str):
    return feature_pairs(path, feature)


st.title("Correlation report")
st.caption("Every held-out cell is measured twice: on its real image and on the image generated from its profile. "
           "Pearson r across cells, per feature, says how well the model preserves that feature.")
loaded, _ = page_kit.load_current_model()
model_dir = page_kit.model_directory(loaded) if loaded is not None else None
candidates = [d for d in (model_dir, bundled_model_dir()) if d is not None]
found = next((hit for hit in map(locate_evaluation, candidates) if hit is not None), None)
if found is None:
    st.info(f"No evaluation found for {', '.join(f'`{d}`' for d in candidates)}. Run `cp2image evaluate` on the "
            "model and save its output to the model's `evaluation/` folder.")
    st.stop()
directory, table_file = found
try:
    report = load_report(str(directory), table_file, (directory / table_file).stat().st_mtime)
except (OSError, ValueError) as err:
    st.error(f"The evaluation in `{directory}` cannot be read: {err}")
    st.stop()
evaluated = directory.parent if directory.name == "evaluation" else directory
if model_dir is None or evaluated != model_dir:
    st.warning(f"Showing the evaluation of `{evaluated.name}`, not of the loaded weights "
               f"({loaded.source if loaded else 'none'}).")
st.caption(f"Source: `{_shown_path(directory / table_file)}`")

table = report.correlation
finite = defined(table)
threshold = st.slider("Threshold on r", 0.0, 0.95, 0.5, 0.05, key="corr_threshold")
numbers = report.headline()
shown = {f"features with r > {threshold:g} (of {len(finite)})": f"{100 * float(np.mean(finite['pearson_r'] > threshold)):.0f}%",
         "median r": f"{finite['pearson_r'].median():.2f}"}
for key, label in HEADLINE_LABELS.items():
    if key in numbers and len(shown) < 6:
        shown[label] = f"{numbers[key]:.3g}"
for column, (label, value) in zip(st.columns(len(shown)), shown.items()):
    column.metric(label, value)
inception = report.metrics.get("inception")
if isinstance(inception, dict) and inception.get("available"):
    st.caption("FID/KID use a TorchScript Inception-v3 whose equality with the standard 2015 weights is unverified; "
               "compare them between models evaluated here, not with published FIDs.")

hist_col, rank_col = st.columns([3, 2], gap="large")
with hist_col:
    st.plotly_chart(charts.correlation_histogram(table, threshold=threshold), key="corr_hist")
    page_kit.download_row(lambda: report_panels.correlation_histogram_panel(table, threshold=threshold),
                          stem="correlation_histogram", key="dl_corr_hist")
with rank_col:
    n = st.number_input("Features to list", 5, 100, 15, 5, key="corr_n")
    best, worst = st.tabs(["Best preserved", "Worst preserved"])
    top = finite.head(int(n)).reset_index(drop=True)
    bottom = finite.tail(int(n)).iloc[::-1].reset_index(drop=True)
    with best:
        st.dataframe(top, hide_index=True, height=300, key="corr_top_table")
        page_kit.download_row(lambda: report_panels.ranked_features_panel(top, title=f"{int(n)} best-preserved features"),
                              stem="correlation_top", key="dl_corr_top", compact=True)
    with worst:
        st.dataframe(bottom, hide_index=True, height=300, key="corr_bottom_table")
        page_kit.download_row(lambda: report_panels.ranked_features_panel(bottom, title=f"{int(n)} worst-preserved features"),
                              stem="correlation_bottom", key="dl_corr_bottom", compact=True)

st.subheader("One feature: real vs generated")
if report.pairs_path is None:
    st.info(f"No `pairs.parquet` in `{directory}`, so per-cell scatter plots are unavailable.")
    st.stop()
names = list(table["feature"])
default = names.index("Nuclei_AreaShape_Area") if "Nuclei_AreaShape_Area" in names else 0
feature = st.selectbox("Search a feature (type to filter)", names, index=default, key="corr_feature")
pairs = load_pairs(str(report.pairs_path), report.pairs_path.stat().st_mtime, feature)
if pairs.empty:
    st.info(f"No per-cell values stored for {feature}.")
    st.stop()
r = float(table.loc[table["feature"] == feature, "pearson_r"].iloc[0])
st.plotly_chart(charts.feature_scatter(pairs, feature, r=r), key="corr_scatter")
page_kit.download_row(lambda: report_panels.feature_scatter_panel(pairs, feature, r=r),
                      stem=f"correlation_{feature}", key="dl_corr_scatter")

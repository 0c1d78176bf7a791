"""cp2image app entry point: `streamlit run app/Home.py` from the repository root.

Builds the navigation (`st.navigation` / `st.Page`) over the pages in the top-level
`pages/` folder, renders the shared sidebar (model weights), and shows Home.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

import page_kit

PAGES = Path(__file__).resolve().parents[1] / "pages"

st.set_page_config(page_title="cp2image", page_icon=":material/biotech:", layout="wide")

CITATION = """\
@misc{ji_cp2image,
  title  = {CP2Image: Generating high-quality single-cell images using CellProfiler representations},
  author = {Ji, Yanni and Cutiongco, Marie F. A. and Jensen, Bj{\\o}rn Sand and Yuan, Ke},
}
@article{ljosa2012bbbc,
  title   = {Annotated high-throughput microscopy image sets for validation},
  author  = {Ljosa, Vebjorn and Sokolnicki, Katherine L. and Carpenter, Anne E.},
  journal = {Nature Methods}, volume = {9}, number = {7}, pages = {637}, year = {2012},
}"""


def home() -> None:
    st.title("cp2image")
    st.markdown(
        "**Turn CellProfiler profiles into single-cell images.** A CP2Image generator maps a cell's "
        "CellProfiler feature vector to a 3-channel crop (DNA blue, β-tubulin red, F-actin green), "
        "so you can *see* what a profile means: push one feature up or down, walk from DMSO towards "
        "a drug along the PCA trajectory, step a control cell towards a mechanism of action, check "
        "which features the model preserves, or render profiles you have without images."
    )
    left, right = st.columns(2)
    with left:
        st.subheader("Dataset")
        dataset, problem = page_kit.dataset_or_problem()
        if dataset is None:
            st.error(problem)
        else:
            cells = dataset.cells
            compounds = cells["Metadata_Compound"].nunique()
            moas = cells["Metadata_MoA"].nunique() if "Metadata_MoA" in cells.columns else 0
            a, b, c = st.columns(3)
            a.metric("cells", f"{len(dataset):,}")
            b.metric("compounds", compounds)
            c.metric("MoAs", moas)
            provenance = dataset.meta.get("provenance") or {}
            st.caption(
                f"`{dataset.path.name}` · {len(dataset.feature_names)} CellProfiler features · "
                f"{dataset.images.shape[-1]}×{dataset.images.shape[-1]} px crops · "
                f"source: {provenance.get('source', 'unknown')}"
            )
    with right:
        st.subheader("Model")
        loaded, problem = page_kit.load_current_model()
        if problem:
            st.error(problem)
        if loaded is not None:
            model = loaded.model
            a, b = st.columns(2)
            a.metric("input features", len(model.feature_names))
            b.metric("image size", f"{model.image_size} px")
            st.caption(f"Weights from **{loaded.source}**")
            if loaded.notice:
                st.warning(loaded.notice)
    st.subheader("Pages")
    st.markdown(
        "- **Feature perturbation** — sweep one feature of a real cell and measure it back on the images.\n"
        "- **PCA explorer** — DMSO and a compound's doses in PCA; click the red line or any point to generate that cell.\n"
        "- **MoA interpolation** — replace a DMSO cell's features by a target MoA's, 50 at a time, with cosine similarity.\n"
        "- **Correlation report** — which CellProfiler features survive generation (per-feature Pearson r).\n"
        "- **Generate from your profiles** — upload a CSV of CellProfiler profiles, get images back.\n"
        "- **Model card** — what the weights were trained on, how well they do, and their limits."
    )
    st.subheader("How to cite")
    st.code(CITATION, language="bibtex")
    st.caption("The default dataset is a *simulated* BBBC021-like screen bundled with the app; "
               "images on these pages are not real microscopy unless labelled 'real'.")


page_kit.pixelated_images()
page_kit.sidebar_model_field()
navigation = st.navigation(
    {
        "": [st.Page(home, title="Home", icon=":material/home:", default=True, url_path="home")],
        "Explore": [
            st.Page(PAGES / "feature_perturbation.py", title="Feature perturbation", icon=":material/tune:"),
            st.Page(PAGES / "pca_explorer.py", title="PCA explorer", icon=":material/scatter_plot:"),
            st.Page(PAGES / "moa_interpolation.py", title="MoA interpolation", icon=":material/linear_scale:"),
        ],
        "Model": [
            st.Page(PAGES / "correlation_report.py", title="Correlation report", icon=":material/insights:"),
            st.Page(PAGES / "generate_profiles.py", title="Generate from your profiles", icon=":material/upload_file:"),
            st.Page(PAGES / "model_card.py", title="Model card", icon=":material/description:"),
        ],
    }
)
page_kit.sidebar_model_status()
navigation.run()

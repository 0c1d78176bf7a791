"""cp2image app entry point: `streamlit run app/Home.py` from the repository root.

Builds the navigation (`st.navigation` / `st.Page`) over the pages in the top-level
`pages/` folder, renders the shared sidebar (model weights), and shows Home.

This file has two roles. Every script run (each page of each session) runs it as
`__main__`. Before that, `streamlit run` imports it once as a module, looking for a
server app (an `st.App` assignment; Streamlit versions without `st.App` skip this): that
import only defines `app`, whose start-up hook (`warmup.preload_lifespan`) imports pandas and
the dataset code in the background while the browser is still loading Streamlit's front end,
so Home's first run finds them loaded. The command stays `streamlit run app/Home.py`.
Home itself never imports torch (its example is drawn by `page_kit.load_home_model`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

import warmup

if __name__ == "__main__":  # a script run; the server's own import of this file stays light
    import page_kit
elif hasattr(st, "App"):  # `streamlit run` looking for a server app (older Streamlit never imports this file)
    app = st.App(Path(__file__).name, lifespan=warmup.preload_lifespan)

PAGES = Path(__file__).resolve().parents[1] / "pages"
_SIDEBAR_STATUS: Any = None  # the sidebar container under the model field, set by each script run (`main`)

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


def dataset_banner(dataset: Any) -> None:
    """Which dataset is loaded and whether its cells are simulated, in the first thing Home shows."""
    words = page_kit.crop_words(dataset)
    name = f"**Loaded dataset: {dataset.path.name}** — {len(dataset):,} {words.cells}."
    if words.origin == "measured":
        st.success(f"{name} {words.summary}", icon=":material/biotech:")
    else:  # simulated, or origin not recorded: say it loudly, before any image
        st.warning(f"{name} {words.summary} Every crop on these pages is captioned "
                   f"“{words.cell}”, and results on it describe the simulator, not biology.",
                   icon=":material/science:")


def show_example_crop(dataset: Any) -> tuple[int, Any] | None:
    """The example's dataset crop and text now; returns (row, slot for the generated image), or None."""
    words = page_kit.crop_words(dataset)
    try:
        row = page_kit.example_row(dataset)
    except ValueError as err:
        st.info(f"No example cell: {err}.")
        return None
    meta = dataset.cells.iloc[row]
    crop, generated, text = st.columns([1, 1, 3], gap="small")
    with crop:
        page_kit.show_images(dataset.images[row:row + 1], [words.cell], width=150)
    slot = generated.empty()
    slot.caption("Drawing the generated image…")
    text.markdown(
        f"**Left:** a {words.cell} from the loaded dataset ({meta.get('Metadata_Compound', '?')}, plate "
        f"{meta.get('Metadata_Plate', '?')}, well {meta.get('Metadata_Well', '?')}) — the control cell closest to "
        f"the typical control profile.  \n**Right:** the image the model draws from that cell's "
        "CellProfiler features alone, without seeing the crop (the generator as drawn; a toggle on the pages "
        "refines images with the model's critic). DNA blue, β-tubulin red, F-actin green."
    )
    return row, slot


def show_generated(slot: Any, loaded: Any, dataset: Any, row: int) -> None:
    """Fill the example's second image once the model is loaded (Home's text is already drawn)."""
    try:
        image = page_kit.generated_example(loaded, dataset, row)
    except ValueError as err:
        slot.info(f"The model cannot draw this cell: {err}.")
        return
    with slot.container():
        page_kit.show_images(image, ["generated"], width=150)


def show_model(loaded: Any) -> None:
    a, b = st.columns(2)
    a.metric("Input features", len(loaded.model.feature_names))
    b.metric("Image size", f"{loaded.model.image_size} px")
    st.caption(f"Weights from **{loaded.source}**")
    if loaded.notice:
        st.warning(loaded.notice)


def home() -> None:
    """Text, dataset and the example's dataset crop first; the model loads after they are sent."""
    from cp2image.app_support.dataset_summary import moa_count  # pandas only; the server's import stays light

    st.title("cp2image")
    st.markdown(
        "**Turn CellProfiler profiles into single-cell images.** A CP2Image generator maps a cell's "
        "CellProfiler feature vector to a 3-channel crop (DNA blue, β-tubulin red, F-actin green), "
        "so you can *see* what a profile means: push one feature up or down, walk from DMSO towards "
        "a drug along the PCA trajectory, step a control cell towards a mechanism of action, check "
        "which features the model preserves, or render profiles you have without images."
    )
    page_kit.show_url_notes()  # a shared link whose model or dataset this server does not offer
    dataset, problem = page_kit.dataset_or_problem()
    if dataset is None:
        st.error(problem)
    else:
        dataset_banner(dataset)
    model_problem_slot = st.empty()
    example = None
    if dataset is not None:
        st.subheader("One example cell")
        example = show_example_crop(dataset)
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Dataset")
        if dataset is not None:
            cells = dataset.cells
            a, b, c = st.columns(3)
            a.metric("Cells", f"{len(dataset):,}")
            b.metric("Compounds", cells["Metadata_Compound"].nunique())
            c.metric("MoAs (+ DMSO)", moa_count(cells), help="Mechanisms of action, not counting the DMSO control.")
            size = page_kit.pixel_size_um(dataset)
            crop = dataset.images.shape[-1]
            extent = f" ({crop * size:.0f} × {crop * size:.0f} µm at {size:g} µm/px)" if size else ""
            st.caption(f"`{dataset.path.name}` · {len(dataset.feature_names)} CellProfiler features · "
                       f"{crop}×{crop} px crops{extent} · {page_kit.crop_words(dataset).cells}")
    with right:
        st.subheader("Model")
        model_slot = st.empty()
        model_slot.caption("Loading the model…")
    st.subheader("Pages")
    st.markdown(
        "- **Feature perturbation** — sweep one feature of a dataset cell and measure it back on the images.\n"
        "- **PCA explorer** — DMSO and a compound's doses in PCA; click the red line or any point to generate that cell.\n"
        "- **MoA interpolation** — replace a DMSO cell's features by a target MoA's, 50 at a time, with cosine similarity.\n"
        "- **Correlation report** — which CellProfiler features survive generation (per-feature Pearson r).\n"
        "- **Generate from your profiles** — upload a CSV of CellProfiler profiles, get images back.\n"
        "- **Model card** — what the weights were trained on, how well they do, and their limits.\n\n"
        "Every page keeps its choices in the address bar: copy the link to share exactly that view."
    )
    st.subheader("How to cite")
    st.code(CITATION, language="bibtex")
    # Everything above is on its way to the browser; now the model: the weights evaluated with NumPy
    # (no torch import; the warm-up imports torch after Home), or the torch model for a Hub choice.
    loaded, model_problem = page_kit.load_home_model()
    page_kit.sidebar_model_status(_SIDEBAR_STATUS, (loaded, model_problem))
    if model_problem:
        model_problem_slot.error(model_problem)
    if loaded is None:
        model_slot.empty()
        if example is not None:
            example[1].empty()
        return
    with model_slot.container():
        show_model(loaded)
    if example is not None:
        show_generated(example[1], loaded, dataset, example[0])


def main() -> None:
    """One script run: page config, the shared sidebar, the navigation, then the chosen page."""
    global _SIDEBAR_STATUS  # Home fills it once its model is loaded (`home`)
    # An emoji icon: the browser draws it locally (a ":material/…:" page icon is fetched from fonts.gstatic.com,
    # which fails offline).
    st.set_page_config(page_title="cp2image", page_icon="🔬", layout="wide")
    warmup.limit_blas_threads()
    warmup.run_started()
    try:
        page_kit.pixelated_images()
        page_kit.sidebar_model_field()
        _SIDEBAR_STATUS = st.sidebar.container()  # where the weights came from, filled once the model is loaded
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
        if navigation.url_path:  # not Home (the default page, url_path ""), which loads the model after its text
            page_kit.sidebar_model_status(_SIDEBAR_STATUS)
        navigation.run()
    finally:  # also after a page's st.stop(): start warming the other pages once this one is drawn
        warmup.run_finished()
        warmup.start()


if __name__ == "__main__":
    main()

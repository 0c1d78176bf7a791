"""Streamlit glue shared by the pages: cached model and dataset, guard clauses, downloads.

Lives beside `Home.py` (Streamlit puts the entry script's folder on `sys.path`, so
every page can `import page_kit`). Only widgets and caching here; computation goes in
`cp2image.analysis`, `cp2image.evaluation`, `cp2image.models` and `cp2image.app_support`.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

import sources
from cp2image import hosting
from cp2image.app_support.model_spec import ModelChoice
from cp2image.assets import assets_dir

log = logging.getLogger(__name__)
hosting.configure_process()  # hosted mode: caches into a temp folder before anything writes (cp2image.hosting)

APP_DIR = Path(__file__).resolve().parent
REPO_ROOT = APP_DIR.parent
MODEL_SPEC_KEY = sources.MODEL_KEY
CHANNEL_VIEW_KEY = "channel_view"
SCALE_BAR_UM = 10.0  # scale bar on exported image panels (15 px at 0.65 µm/px)
CHANNEL_VIEWS: dict[str, list[str] | None] = {  # label → channels for render.composite
    "Merge": None,
    "DNA": ["DNA"],
    "Tubulin": ["Tubulin"],
    "Actin": ["Actin"],
}


# ----------------------------------------------------------------------------- model


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load_model_cached(spec: str | None, assets_root: str, env_model: str | None) -> Any:
    """One model per (spec, assets folder, CP2IMAGE_MODEL) per process, shared read-only by every session."""
    import torch

    from cp2image.models.hub import load_or_default

    # The server answers many sessions at once with small batches (1–9 images): one
    # intra-op thread per request avoids oversubscribing the cores (measured: 2 threads were
    # 5–150x slower than 1 on the shared 2-core machine, benchmarks/bench_model.py).
    torch.set_num_threads(hosting.torch_threads())
    return load_or_default(spec)  # the fallback chain is cp2image.models.hub's; here only caching


def sidebar_model_field() -> None:
    """The sidebar model and dataset choice (rendered once, by Home.py, on every page; see sources.py)."""
    sources.sidebar_choices()


def current_choice() -> tuple[ModelChoice, str | None]:
    """The validated model choice and, if the typed text was refused, why."""
    return sources.model_choice()


def load_current_model() -> tuple[Any | None, str | None]:
    """(LoadedModel or None, problem message or None) for the sidebar's choice."""
    choice, refused = current_choice()
    problems = [f"{refused} Showing the default model instead."] if refused else []
    try:
        loaded = _load_model_cached(choice.spec, str(assets_dir()), os.environ.get("CP2IMAGE_MODEL"))
    except Exception as err:  # the default model itself failed: a message, never a traceback
        log.warning("the default model failed to load: %s", err)
        return None, " ".join(problems + [f"The default model could not be loaded: {err}"])
    if loaded.problem:
        problems.append(loaded.problem)
    return loaded, " ".join(problems) or None


@st.cache_resource(show_spinner=False, max_entries=4)
def _lean_model_cached(spec: str | None, assets_root: str, env_model: str | None) -> Any:
    """The choice's generator evaluated with NumPy (`cp2image.models.numpy_generator`), or None."""
    from cp2image.models.numpy_generator import load_lean

    return load_lean(spec)


def load_home_model() -> tuple[Any | None, str | None]:
    """Home's model, as `load_current_model`, but torch-free where the choice allows (the default and
    bundled or local models): Home draws its example with the same weights evaluated in NumPy, so a
    fresh server draws Home without importing torch (~1.2 CPU s); the warm-up imports it after Home."""
    choice, refused = current_choice()
    if not refused:
        lean = _lean_model_cached(choice.spec, str(assets_dir()), os.environ.get("CP2IMAGE_MODEL"))
        if lean is not None:
            return lean, None
    return load_current_model()


def require_model() -> Any:
    """The loaded model (a `LoadedModel`), or a page message and `st.stop()`."""
    loaded, problem = load_current_model()
    if problem:
        st.error(problem)
    if loaded is None and not problem:  # with a problem, its message says what to fix; weights may well exist
        st.info("No model weights are available. Put trained weights in `assets/models/cp2image-sim` "
                "(or the folder CP2IMAGE_ASSETS names) or set CP2IMAGE_MODEL, then reload.")
    if loaded is None:
        st.stop()
    if getattr(loaded, "notice", None):
        st.warning(loaded.notice)
    return loaded


def sidebar_model_status(where: Any, model: tuple[Any | None, str | None] | None = None) -> None:
    """Where the weights came from, shown in the sidebar container `where` (under the field);
    `model` is the page's (loaded, problem) when it has them (Home: `load_home_model`)."""
    loaded, problem = model if model is not None else load_current_model()
    if problem:
        where.error(problem)
    if loaded is not None:
        where.caption(f"Weights: **{loaded.source}**")
        if getattr(loaded, "notice", None):
            where.warning(loaded.notice)


# ----------------------------------------------------------------------------- dataset


@st.cache_resource(show_spinner="Opening the dataset…", max_entries=2)
def _open_dataset_cached(path: str) -> Any:
    from cp2image.data.dataset import open_dataset

    return open_dataset(path)


def dataset_or_problem() -> tuple[Any | None, str | None]:
    """The chosen dataset (sidebar; default CP2IMAGE_DATA or the bundled screen), or why not."""
    ref, problem = sources.dataset_choice()
    if ref is None:
        return None, problem
    try:
        return _open_dataset_cached(str(ref.path)), None
    except Exception as err:  # DatasetError, OSError: shown on the page (without server paths), never a traceback
        reason = str(err).replace(str(ref.path), ref.name)
        return None, f"The dataset {ref.label} could not be opened ({reason})."


def require_dataset() -> Any:
    """The chosen `Dataset`, or a page message and `st.stop()`; also stops when the loaded model
    reads features the dataset lacks (the message names them)."""
    from cp2image.data.catalog import feature_mismatch

    dataset, problem = dataset_or_problem()
    if dataset is None:
        st.error(problem)
        st.info("Build it with `cp2image simulate` (see the README), or set CP2IMAGE_ASSETS to a folder holding it.")
        st.stop()
    loaded, _ = load_current_model()
    names = getattr(getattr(loaded, "model", None), "feature_names", None)
    mismatch = feature_mismatch(names, dataset.feature_names, dataset_label=f"the dataset {dataset.path.name}") \
        if names is not None else None
    if mismatch:
        st.error(mismatch)
        st.stop()
    return dataset


# Home's example cell. Cached here, not in Home.py: `streamlit run` also imports Home.py before the server
# has its runtime, and a cache decorator run then logs "No runtime found".
@st.cache_data(max_entries=8, show_spinner=False)
def _example_row(_dataset: Any, dataset_key: str) -> int:
    from cp2image.analysis.example_cell import typical_control_cell

    return typical_control_cell(_dataset.cells, list(_dataset.feature_names))


def example_row(dataset: Any) -> int:
    """Row of Home's example: the control cell nearest the typical control profile (no model needed)."""
    return _example_row(dataset, str(dataset.path))


@st.cache_data(max_entries=8, show_spinner=False)
def _generated_example(_model: Any, model_key: tuple[str, str], _dataset: Any, dataset_key: str, row: int) -> np.ndarray:
    profile = _dataset.cells.iloc[[row]][list(_model.feature_names)]
    return _model.generate_from_normalised(_model.normalise(profile, warn=False))


def generated_example(loaded: Any, dataset: Any, row: int) -> np.ndarray:
    """The image the model draws from one dataset cell's own profile (Home's example; `loaded` from
    `load_home_model`: the torch model or the same weights in NumPy)."""
    return _generated_example(loaded.model, (loaded.source, type(loaded.model).__name__), dataset,
                              str(dataset.path), row)


# ----------------------------------------------------------------------------- honest labels


def crop_words(dataset: Any) -> Any:
    """How to caption this dataset's crops (`CropWords`): "simulated cell", "real cell" or "dataset cell".

    Read from the dataset's provenance (`cp2image.app_support.provenance`), so a crop from
    the virtual BBBC021 is never captioned "real cell". Use `.cell` under one crop, `.cells`
    in headings and `.adjective` before a group ("simulated DMSO").
    """
    from cp2image.app_support.provenance import crop_words as words

    return words((getattr(dataset, "meta", None) or {}).get("provenance"))


def pixel_size_um(dataset: Any) -> float | None:
    """µm per pixel from dataset.json (BBBC021: 0.65), or None when the dataset does not say."""
    value = (getattr(dataset, "meta", None) or {}).get("pixel_size_um")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


# ----------------------------------------------------------------------------- shareable views (URL)

URL_NOTES_KEY = "_url_notes"


def _same_choice(asked: str, value: Any, url_text: Callable[[Any], str]) -> bool:
    """Whether the URL text `asked` denotes `value` (as Streamlit writes it, or the same number)."""
    if asked in (url_text(value), str(value)):
        return True
    try:
        return bool(np.isclose(float(asked), float(value)))
    except (TypeError, ValueError):
        return False


def url_widget(widget: Callable[..., Any], label: str, *, key: str, url_text: Callable[[Any], str] | None = None,
               **kwargs: Any) -> Any:
    """Create `widget(label, key=key, **kwargs)` with its value kept in the page URL (`?key=value`).

    Uses Streamlit's `bind="query-params"`: the widget starts from the link's value, and every
    change updates the address bar, so a copied link reopens exactly this view. Streamlit
    silently drops a value it cannot use (an option that no longer exists, a number out of
    range); this records a note saying so, shown by `show_url_notes()`, and the widget keeps
    its default. `url_text` is how a value appears in the URL (default: the widget's
    `format_func`, else `str`).
    """
    asked = [a for a in st.query_params.get_all(key) if a != ""]
    value = widget(label, key=key, bind="query-params", **kwargs)
    if asked:
        text = url_text or kwargs.get("format_func") or str
        got = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(asked) == 1 and len(got) > 1 and "," in asked[0]:
            asked = asked[0].split(",")
        unused = [a for a in asked if not any(_same_choice(a, v, text) for v in got)]
        if unused:
            shown = ", ".join(text(v) for v in got) or "none"
            note_url_problem(f"The link asked for {label} = {', '.join(repr(a) for a in unused)}, which this page "
                             f"does not offer (now); showing {shown} instead.")
    return value


def note_url_problem(message: str) -> None:
    """Remember a note about a link value that could not be used (shown by `show_url_notes`)."""
    notes = st.session_state.setdefault(URL_NOTES_KEY, [])
    if message not in notes:
        notes.append(message)


def show_url_notes() -> None:
    """Show, once, the notes about link values that fell back to defaults."""
    for note in st.session_state.pop(URL_NOTES_KEY, []):
        st.info(note, icon=":material/link_off:")


# ----------------------------------------------------------------------------- display


def channel_view(*, key: str = CHANNEL_VIEW_KEY) -> list[str] | None:
    """A compact picker for composite or one channel (kept in the URL); returns the channels for `show_images`."""
    label = url_widget(st.segmented_control, "Channels", key=key, options=list(CHANNEL_VIEWS),
                       default=next(iter(CHANNEL_VIEWS)),
                       help="Merge: DNA blue, β-tubulin red, F-actin green. One channel alone is shown in grey "
                            "(white = bright), which reads better than a dark colour on black.")
    return CHANNEL_VIEWS.get(label or next(iter(CHANNEL_VIEWS)))


@st.cache_data(max_entries=4096, show_spinner=False)
def _png(rgb: np.ndarray) -> bytes:
    """PNG bytes of one (H, W, 3) crop, cached by content: the same crop is encoded once per process."""
    from cp2image.analysis.export import png_bytes

    return png_bytes(rgb, compress_level=1)  # crops of a few kB: fast encoding matters more than size


# Crops are enlarged without smoothing; the main column's side padding shrinks from Streamlit's
# 5rem to 2rem, which gives the pages ~100 px more width at a 1280 px laptop screen.
PIXELATED_CSS = ("<style>[data-testid='stImage'] img {image-rendering: pixelated;}"
                 "[data-testid='stMainBlockContainer'] {padding-left: 2rem; padding-right: 2rem;}</style>")
MAIN_WIDTH_1280 = 880  # px of page width beside the sidebar at a 1280 px window (measured in the browser test)


def pixelated_images() -> None:
    """Page-wide display CSS (called once per run by Home.py, for every page)."""
    st.html(PIXELATED_CSS)


def strip_width(n_images: int, *, room: int = MAIN_WIDTH_1280 - 40, largest: int = 112, smallest: int = 56) -> int:
    """Display width per crop so that a strip of `n_images` fits on one line of `room` pixels."""
    return int(max(smallest, min(largest, room // max(n_images, 1))))


def show_images(images: np.ndarray, captions: Sequence[str], *, channels: list[str] | None = None,
                width: int = 136) -> None:
    """Crops side by side with their captions, sent at native size and enlarged by the browser.

    `channels=None` is the colour merge; a single channel is drawn in grey (its raw intensity,
    white = 255), so a DNA-only view is not dark blue on black.
    """
    from cp2image.analysis.panels import view_rgb  # the same rule as every downloaded panel

    rgb = view_rgb(images, channels)
    # output_format="PNG": with "auto" Streamlit re-encodes an RGB PNG as JPEG (quality 90), which both costs
    # ~1 ms per crop and blurs a 64-px cell with JPEG artefacts
    st.image([_png(np.ascontiguousarray(x)) for x in rgb], caption=list(captions), width=width, output_format="PNG")


def show_notes(notes: Sequence[Any], *, shown_elsewhere: Sequence[type[Warning]] = ()) -> None:
    """Library warnings (`warning_capture.Note`s) as compact expanders holding the full text.

    The heading comes from the warning's class (`cp2image.warnings`), never from its wording.
    Classes in `shown_elsewhere` are left out: the page already says the same in plain words
    (e.g. the clip notice of a sweep replaces its "outside the reference range" note).
    """
    for note in notes:
        if shown_elsewhere and note.is_a(*shown_elsewhere):
            continue
        with st.expander(f":material/warning: {note.title}"):
            st.warning(note.text)


def download_row(build_panel: Callable[[], Any], *, stem: str, key: str,
                 formats: Sequence[str] = ("png", "svg", "pdf", "csv"), compact: bool = False) -> None:
    """PNG / SVG / PDF / CSV buttons for one panel; each file is made only when clicked.

    `compact=True` stacks the buttons in a "Download" popover, for narrow columns.
    """
    from cp2image.analysis import export

    makers = {
        "png": (lambda: export.to_png(build_panel(), dpi=300), "image/png", "PNG"),
        "svg": (lambda: export.to_svg(build_panel()), "image/svg+xml", "SVG"),
        "pdf": (lambda: export.to_pdf(build_panel()), "application/pdf", "PDF"),
        "csv": (lambda: export.to_csv(build_panel()), "text/csv", "CSV"),
    }
    if compact:
        holder = st.popover("Download", icon=":material/download:")
        columns = [holder] * len(formats)
    else:
        columns = st.columns([1] * len(formats) + [max(1, 7 - 2 * len(formats))], gap="small")
    for column, fmt in zip(columns, formats):
        make, mime, label = makers[fmt]
        column.download_button(
            label, data=make, file_name=f"{stem}.{fmt}", mime=mime, key=f"{key}_{fmt}",
            on_click="ignore", icon=":material/download:",
            help={"png": "300 dpi raster", "svg": "vector", "pdf": "vector", "csv": "the numbers in this panel"}[fmt],
        )


def model_directory(loaded: Any) -> Path | None:
    """The local folder the weights came from (bundled, local or Hub snapshot folder): cards,
    evaluation files and feature coupling live beside the weights. For computation, never for display."""
    return getattr(loaded, "folder", None)

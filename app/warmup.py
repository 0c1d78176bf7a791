"""Warm the server's caches in the background once Home is drawn, so each page's first visit is fast.

A fresh server pays one-off costs on the first visit to each page: importing torch and the
model classes, scikit-learn, SciPy, Altair and Plotly's figure machinery and the feature-measurement code
(several seconds on a loaded 2-core machine) and loading the measurement's compiled (numba)
code. Home needs none of these (it draws its example with the weights evaluated in NumPy), so Home starts one daemon thread per server process (`start`) that does
them while the user reads Home; a page visited before the thread is done waits only for what is left, since
the imports and `st.cache_*` entries are shared (one lock per cache key: nothing is
computed twice). Between its steps the thread waits while any page script is running,
so a user who clicks at once is not slowed by work for pages they have not opened.

Before that, `preload` imports what Home itself needs (pandas, the dataset code) while
the browser is still loading Streamlit's front end: `streamlit run app/Home.py` finds the
`st.App` in Home.py and runs `preload_lifespan` as the server starts.

Also caps NumPy's BLAS pool at one thread per process: the app answers small requests
(a 492 × 492 eigen-decomposition, batches of 1–9 images) for many sessions at once, and
on the shared 2-core machine a 2-thread OpenBLAS eigh was 5× slower than 1 thread under
load (0.70 s vs 0.13 s), as torch's intra-op pool already is (page_kit).
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import streamlit as st

log = logging.getLogger(__name__)

BLAS_THREADS = 1
_limited: list[int] = []  # the limit already applied in this process (modules are imported once per process)


def limit_blas_threads(n: int = BLAS_THREADS) -> None:
    """Cap the BLAS/OpenMP thread pools of this process (NumPy, SciPy, scikit-learn) at `n`; once per process."""
    if _limited:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; without it the pools keep their default
        return
    threadpool_limits(limits=n)
    _limited.append(n)


def _import(module: str) -> Callable[[], object]:
    """A step importing one module (small steps: the thread yields to running pages between them)."""
    return lambda: importlib.import_module(module)


ANALYSIS_MODULES = (  # what the pages import on their first visit, roughly in order of cost
    "scipy.stats",  # perturbation: Spearman ρ
    "cp2image.analysis.perturb",
    "cp2image.features.measure",  # measure-back on the perturbation page
)
LATER_MODULES = (  # a step runs to its end once started: long ones after the perturbation page's needs
    "sklearn.decomposition",  # PCA explorer
    "cp2image.analysis.trajectory",
    "cp2image.analysis.interpolate",
    "cp2image.evaluation.files",  # correlation report, model card (~0.002 CPU s since the package __init__ is lazy)
    "cp2image.app_support.selection_charts",  # correlation report's brushed histogram
)


def _load_compiled_measurement() -> None:
    """The measure-back's numba kernels, loaded from their on-disk cache: one `measure` of a drawn cell.

    The kernels (segmentation's hole filling and edge distances, erosions, texture, granularity's
    reconstruction) compile on their first call. A synthetic cell (a disc of DNA inside a larger
    disc of cytoplasm) reaches every one of them. With the cache this takes ~0.3 CPU s; on a fresh
    clone (no cache yet) it compiles them all and writes the cache: 9.0 CPU s (3.9 before the
    features' second pass), once per install, here instead of on the first sweep.
    """
    import numpy as np

    from cp2image.features import measure

    size = 68
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - size / 2, xx - size / 2)
    cell = np.zeros((1, 3, size, size), np.uint8)
    cell[0, 0] = np.where(radius < 10, 200, 10)
    cell[0, 1:] = np.where(radius < 24, 120 + (xx % 7) * 10, 5)
    measure(cell, n_jobs=1)


def _import_charts() -> None:
    """Altair, which draws the charts of the perturbation, MoA and correlation pages (~0.2 CPU s)."""
    import pandas as pd

    from cp2image.app_support import vega_charts

    table = pd.DataFrame({"requested": [0.0, 1.0], "measured": [0.0, 1.0]})
    vega_charts.sweep_chart(table, feature="x").to_dict()  # loads the Vega-Lite schema validation


def _import_plotly() -> None:
    """Plotly, which draws the PCA explorer's clickable scatter (~0.1 CPU s after Altair, measured in one process)."""
    import plotly.graph_objects as go

    from cp2image.app_support import charts, plot_theme  # noqa: F401  (builds the Plotly template)

    go.Figure(go.Scatter(x=[0.0, 1.0], y=[0.0, 1.0], mode="markers")).to_json()  # loads Plotly's validators


def _import_parquet() -> None:
    import pyarrow.parquet  # noqa: F401  (correlation report's per-cell pairs)


def _import_figures() -> None:
    """Matplotlib, for the download buttons (the pages import it only when a file is asked for)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401

    from matplotlib.figure import Figure  # noqa: F401  (the panels import it when a file is asked for)


MODEL_MODULES = (  # every page but Home loads the torch model; Home draws its example without torch
    "torch",  # ~1.2 CPU s
    "cp2image.models.cp2image",
    "cp2image.models.hub_io",  # huggingface_hub's model mixin (~0.1 CPU s)
)


def _steps(extra: list[tuple[str, Callable[[], object]]]) -> list[tuple[str, Callable[[], object]]]:
    # torch and the model classes first (every other page needs them), then the chart libraries (Altair for the
    # perturbation, MoA and correlation pages; Plotly, ~0.1 CPU s more, for PCA), the perturbation page's code
    # (the costliest first visit), the other pages', then what only the downloads need.
    return [*((m, _import(m)) for m in MODEL_MODULES), ("charts", _import_charts), ("plotly", _import_plotly),
            *((m, _import(m)) for m in ANALYSIS_MODULES),
            ("compiled measurement", _load_compiled_measurement), *((m, _import(m)) for m in LATER_MODULES),
            ("parquet", _import_parquet), *extra, ("figure imports", _import_figures)]


_active_runs = [0]  # page script runs in progress in this process (Home.py counts them)
_runs_lock = threading.Lock()
YIELD_LIMIT_S = 20.0  # the warm-up waits at most this long for running pages before going on


def run_started() -> None:
    """Called by Home.py as a page script run begins (every page runs through Home.py)."""
    with _runs_lock:
        _active_runs[0] += 1


def run_finished() -> None:
    """Called by Home.py (in `finally`) as a page script run ends, however it ends."""
    with _runs_lock:
        _active_runs[0] = max(0, _active_runs[0] - 1)


def _wait_for_idle_pages() -> None:
    """Let a page the user is waiting for run first: Python threads share one core's worth of the GIL."""
    deadline = time.monotonic() + YIELD_LIMIT_S
    while _active_runs[0] > 0 and time.monotonic() < deadline:
        time.sleep(0.05)


# The warm-up starts this long after Home's script run has ended. It was 3 s: the browser draws Home
# 1–3 s after the run ends (images, layout; longer under load) and a user clicks ~1.5 s after that, so the
# warm-up woke up just as the first page started and both imported in turns on one GIL (a 15.6 s
# first visit, 5.45 s server CPU). Starting 1 s after the run lets the warm-up finish its first, costliest
# steps (modules the next page needs anyway) while Home is drawn and read; a page that arrives mid-step
# waits for that module's import lock instead of importing it a second time.
START_DELAY_S = 1.0


def _run(steps: list[tuple[str, Callable[[], object]]]) -> None:
    time.sleep(START_DELAY_S)
    for name, step in steps:
        _wait_for_idle_pages()
        start = time.perf_counter()
        try:
            step()
        except Exception as err:  # a warm-up failure must never break the app; the page will say what is wrong
            log.warning("warm-up step %r failed: %s", name, err)
            continue
        log.info("warm-up %s: %.2f s", name, time.perf_counter() - start)


@st.cache_resource(show_spinner=False)
def start(_extra: tuple[tuple[str, Callable[[], object]], ...] = ()) -> threading.Thread:
    """Start the warm-up thread once per server process (later calls return the same thread).

    `_extra` are (name, callable) steps run after the imports, e.g. the default views'
    cached computations. Not started under `streamlit.testing` (AppTest), whose runs are
    measured and asserted on one by one, nor with CP2IMAGE_WARMUP=0.
    """
    from streamlit import config

    if config.get_option("global.appTest") or os.environ.get("CP2IMAGE_WARMUP", "1") == "0":
        return threading.Thread()  # not started: tests see only the page they run; operators can opt out
    thread = threading.Thread(target=_run, args=(_steps(list(_extra)),), name="cp2image-warmup", daemon=True)
    thread.start()
    return thread


# ----------------------------------------------------------------------------- before the first session

PRELOAD_MODULES = (  # what Home's first run imports, in the order it needs them (no torch: see page_kit.load_home_model)
    "streamlit.emojis",  # st.set_page_config checks the page icon against it
    "page_kit",  # pandas, pyarrow, the dataset catalog, the model reference (huggingface_hub's errors)
    "cp2image.data.dataset",
    "cp2image.analysis.example_cell",
    "cp2image.analysis.panels",
    "cp2image.models.numpy_generator",
    "safetensors.numpy",
)


def preload() -> None:
    """Import what Home's first script run needs (`PRELOAD_MODULES`); a run that starts meanwhile
    waits on the module being imported instead of importing it again."""
    for module in PRELOAD_MODULES:
        start = time.perf_counter()
        try:
            importlib.import_module(module)
        except Exception as err:  # never break the server: the page will import it and say what is wrong
            log.warning("preload of %s failed: %s", module, err)
            return
        log.info("preloaded %s: %.2f s", module, time.perf_counter() - start)


@contextlib.asynccontextmanager
async def preload_lifespan(app: Any) -> AsyncIterator[None]:
    """`st.App` start-up hook (Home.py): start `preload` in a thread, then let the server serve at once.

    The server is idle between start-up and the first session's script run while the browser
    loads and starts Streamlit's front end; the imports run in that window. Off with CP2IMAGE_WARMUP=0.
    """
    if os.environ.get("CP2IMAGE_WARMUP", "1") != "0":
        threading.Thread(target=preload, name="cp2image-preload", daemon=True).start()
    yield

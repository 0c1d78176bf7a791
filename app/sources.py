"""The sidebar's model and dataset choice, and reading those choices back on every page.

Rendered once per run by Home.py (through `page_kit.sidebar_model_field`), so every page
shares them; both live in the page URL (`?model_spec=…&dataset_choice=…`, `page_kit.url_widget`).
Choices are validated allowlists, never paths: models by
`cp2image.app_support.model_spec` (bundled names, Hub ids; hosted mode: only the ids in
CP2IMAGE_ALLOWED_MODELS), datasets by `cp2image.data.catalog` (the bundled screen,
CP2IMAGE_DATA, datasets under CP2IMAGE_DATA_ROOTS). Widgets only: loading and caching
are `page_kit`'s.
"""
from __future__ import annotations

import streamlit as st

from cp2image import hosting
from cp2image.app_support.model_spec import ModelChoice, bundled_model_names, parse_model_choice
from cp2image.data.catalog import DatasetRef, choose_dataset, dataset_choices, env_dataset

MODEL_KEY = "model_spec"
DATASET_KEY = "dataset_choice"
DEFAULT_MODEL_OPTION = ""  # the server's default model (CP2IMAGE_MODEL or the bundled weights)


def _model_widget() -> None:
    import page_kit  # here, not at the top: page_kit imports this module

    allowed = hosting.allowed_hub_models()
    if allowed is None:
        page_kit.url_widget(
            st.sidebar.text_input,
            "Model weights",
            key=MODEL_KEY,
            placeholder="default (CP2IMAGE_MODEL or bundled)",
            help="Leave empty for the default weights, or enter a Hugging Face Hub id like 'org/name' "
            "(optionally '@revision') or the name of a bundled model (e.g. 'cp2image-sim'). Local paths are "
            "not accepted here; set CP2IMAGE_MODEL on the server instead.",
        )
        return
    options = [DEFAULT_MODEL_OPTION, *bundled_model_names(), *allowed]
    page_kit.url_widget(st.sidebar.selectbox, "Model weights", key=MODEL_KEY, options=options,
                        format_func=lambda o: o or "default", url_text=str, help="The models this server offers.")


def _dataset_widget() -> None:
    import page_kit

    labels = [ref.label for ref in dataset_choices()]
    if DATASET_KEY in st.session_state and st.session_state[DATASET_KEY] not in labels:
        st.session_state.pop(DATASET_KEY)  # a dataset that disappeared falls back to the default
    page_kit.url_widget(
        st.sidebar.selectbox, "Dataset", key=DATASET_KEY, options=labels,
        help="The cells every page explores. The server offers its bundled simulated screen, the folder set in "
        "CP2IMAGE_DATA, and datasets under CP2IMAGE_DATA_ROOTS.",
    )
    try:
        env_dataset()
    except ValueError as err:  # CP2IMAGE_DATA names no dataset: say so in the sidebar, on every page
        st.sidebar.warning(f"{err}; the list offers the other datasets.")


def sidebar_choices() -> None:
    """Model and dataset pickers in the sidebar."""
    _model_widget()
    _dataset_widget()


def model_choice() -> tuple[ModelChoice, str | None]:
    """The validated model choice and, if what was typed was refused, why."""
    try:
        return parse_model_choice(st.session_state.get(MODEL_KEY, ""),
                                  allowed_hub_ids=hosting.allowed_hub_models()), None
    except ValueError as err:
        return parse_model_choice(""), str(err)


def dataset_choice() -> tuple[DatasetRef | None, str | None]:
    """The chosen dataset and, if the choice or CP2IMAGE_DATA is unusable, why."""
    try:
        return choose_dataset(st.session_state.get(DATASET_KEY)), None
    except ValueError as err:
        try:
            return dataset_choices()[0], f"{err} Showing the default dataset instead."
        except (ValueError, IndexError):
            return None, str(err)

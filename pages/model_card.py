"""Model card: what the weights were trained on, how well they do, their limits."""
from __future__ import annotations

import streamlit as st

import page_kit
from cp2image.evaluation.files import locate_evaluation, read_evaluation
from cp2image.models.card import (
    card_images,
    card_sections,
    figure_png,
    hide_server_paths,
    model_facts,
    plain_summary,
    read_card,
)


@st.cache_data(max_entries=16, show_spinner=False)
def card_figure(path: str, stamp: float) -> bytes:
    return figure_png(path)


@st.cache_data(max_entries=8, show_spinner=False)
def evaluation_of(directory: str, stamp: float):
    """(correlation table, number of held-out cells) of the model's stored evaluation, or (None, None)."""
    folder = locate_evaluation(directory)
    if folder is None:
        return None, None
    try:
        report = read_evaluation(folder)
    except (OSError, ValueError):
        return None, None
    metrics = report.metrics
    n_cells = (metrics.get("dataset") or {}).get("n_evaluated") if isinstance(metrics.get("dataset"), dict) else None
    return report.correlation, n_cells or metrics.get("n_cells")


st.title("Model card")
page_kit.show_url_notes()
loaded = page_kit.require_model()
model = loaded.model
st.caption(f"Weights from **{loaded.source}**")
directory = page_kit.model_directory(loaded)
correlation, n_cells = evaluation_of(str(directory), 0.0) if directory is not None else (None, None)
st.subheader("In short")
st.markdown("\n".join(f"{k + 1}. {line}" for k, line in enumerate(
    plain_summary(model, correlation, n_cells=n_cells))))
st.caption("Written from the weights' own configuration and stored evaluation; the full card follows.")

facts = model_facts(model)
facts["value"] = facts["value"].map(hide_server_paths)
with st.expander("Facts read from the weights' configuration"):
    st.dataframe(facts, hide_index=True, key="card_facts")
card = read_card(directory) if directory is not None else None
if card is None:
    st.info("These weights come without a README.md model card; the facts above are read from their config.")
    st.stop()
card = hide_server_paths(card)
metadata, body = card_sections(card)
if metadata:
    with st.expander("Card metadata"):
        st.json(metadata)
st.subheader("Full model card")
for kind, value in card_images(body, directory):
    if kind == "image":
        st.image(card_figure(str(value), value.stat().st_mtime), output_format="PNG")  # "auto" would re-encode as JPEG
    elif kind == "caption":
        st.caption(str(value))
    else:
        st.markdown(str(value))
st.download_button("Model card (Markdown)", card, file_name="MODEL_CARD.md", mime="text/markdown",
                   key="card_download", on_click="ignore", icon=":material/download:")
st.download_button("Facts (CSV)", facts.to_csv(index=False), file_name="model_facts.csv", mime="text/csv",
                   key="card_facts_download", on_click="ignore", icon=":material/download:")

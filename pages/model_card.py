"""Model card: what the weights were trained on, how well they do, their limits."""
from __future__ import annotations

import streamlit as st

import page_kit
from cp2image.app_support.model_card import card_images, card_sections, figure_png, model_facts, read_card

@st.cache_data(max_entries=16, show_spinner=False)
def card_figure(path: str, stamp: float) -> bytes:
    return figure_png(path)


st.title("Model card")
loaded = page_kit.require_model()
model = loaded.model
st.caption(f"Weights from **{loaded.source}**")
facts = model_facts(model)
st.dataframe(facts, hide_index=True, key="card_facts")
directory = page_kit.model_directory(loaded)
card = read_card(directory) if directory is not None else None
if card is None:
    st.info("These weights come without a README.md model card; the facts above are read from their config.")
    st.stop()
metadata, body = card_sections(card)
if metadata:
    with st.expander("Card metadata"):
        st.json(metadata)
for kind, value in card_images(body, directory):
    if kind == "image":
        st.image(card_figure(str(value), value.stat().st_mtime))
    elif kind == "caption":
        st.caption(str(value))
    else:
        st.markdown(str(value))
st.download_button("Model card (Markdown)", card, file_name="MODEL_CARD.md", mime="text/markdown",
                   key="card_download", on_click="ignore", icon=":material/download:")
st.download_button("Facts (CSV)", facts.to_csv(index=False), file_name="model_facts.csv", mime="text/csv",
                   key="card_facts_download", on_click="ignore", icon=":material/download:")

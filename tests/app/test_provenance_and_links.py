"""Honest crop captions from a dataset's provenance, and page choices kept in the URL (page_kit)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cp2image.app_support.provenance import cell_origin, crop_words

APP_DIR = Path(__file__).resolve().parents[2] / "app"


# -- provenance → captions ---------------------------------------------------------------------
@pytest.mark.parametrize(("provenance", "origin"), [
    ({"source": "cp2image simulate (virtual BBBC021)", "seed": 0}, "simulated"),
    ({"source": "cellprofiler-fields"}, "measured"),
    ({"source": "crops-npz", "path": "x.npz"}, "measured"),
    ({"source": "crops-combined", "inputs": [{"source": "crops-npz"}, {"source": "crops-folder"}]}, "measured"),
    ({"source": "crops-combined", "inputs": [{"source": "crops-npz"}, {"source": "cp2image simulate"}]}, "unknown"),
    ({"source": "cellprofiler-fields", "simulated": True}, "simulated"),  # an explicit statement wins
    ({"source": "somebody's script"}, "unknown"),
    ({}, "unknown"),
    (None, "unknown"),
])
def test_cell_origin_reads_the_provenance_writers_record(provenance, origin):
    assert cell_origin(provenance) == origin


def test_simulated_crops_are_never_called_real():
    words = crop_words({"source": "cp2image simulate (virtual BBBC021)"})
    assert (words.cell, words.cells, words.adjective) == ("simulated cell", "simulated cells", "simulated")
    assert "not microscopy" in words.summary
    assert crop_words({"source": "crops-npz"}).cell == "real cell"
    unknown = crop_words({"source": "mystery"})
    assert unknown.cell == "dataset cell" and "real" not in unknown.cell


# -- choices in the URL --------------------------------------------------------------------------
SCRIPT = textwrap.dedent(f"""
    import sys
    sys.path.insert(0, {str(APP_DIR)!r})
    import streamlit as st
    import page_kit

    compound = page_kit.url_widget(st.selectbox, "Compound", key="cmp", options=["DMSO", "taxol", "latrunculin B"])
    end = page_kit.url_widget(st.selectbox, "Line ends at", key="end", options=[0.1, 1.0, 3.0], index=2,
                              format_func=lambda c: f"{{c:g}}")
    span = page_kit.url_widget(st.slider, "Range", key="span", min_value=0.5, max_value=5.0, value=2.0, step=0.5)
    moas = page_kit.url_widget(st.multiselect, "MoAs", key="moas", options=["Actin disruptors", "Eg5 inhibitors"],
                               default=["Actin disruptors"])
    page_kit.show_url_notes()
""")


def _run(params: dict) -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_a_link_reopens_the_view_it_names():
    at = _run({"cmp": "taxol", "end": "1", "span": "3.5", "moas": ["Actin disruptors", "Eg5 inhibitors"]})
    assert at.selectbox(key="cmp").value == "taxol"
    assert at.selectbox(key="end").value == 1.0
    assert at.slider(key="span").value == 3.5
    assert at.multiselect(key="moas").value == ["Actin disruptors", "Eg5 inhibitors"]
    assert not at.info


def test_a_stale_link_value_falls_back_to_the_default_with_a_note():
    at = _run({"cmp": "nocodazole", "span": "99"})
    assert at.selectbox(key="cmp").value == "DMSO"
    assert at.slider(key="span").value == 2.0
    notes = [i.value for i in at.info]
    assert any("Compound = 'nocodazole'" in n and "showing DMSO" in n for n in notes), notes
    assert any("Range = '99'" in n for n in notes), notes
    at.run()  # the note is said once; the URL no longer holds the bad value
    assert not at.info


def test_a_link_without_choices_shows_the_defaults_and_no_note():
    at = _run({})
    assert (at.selectbox(key="cmp").value, at.selectbox(key="end").value) == ("DMSO", 3.0)
    assert not at.info

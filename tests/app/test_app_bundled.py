"""The app on the bundled assets (the hosted demo's data and weights); a missing asset fails.

Uses the default bundled weights (cp2image-sim) when present, else another bundled model
(served the operator's way, through CP2IMAGE_MODEL).
"""
from __future__ import annotations

import pytest

from app_harness import PAGES, DownloadRecorder, image_captions, open_page, plotly_spec, start_app, trace_values
from cp2image.assets import bundled_dataset_dir, bundled_model_dir

def _bundled_model_spec() -> str | None:
    """None for the default bundled weights, "bundled:<name>" for another bundled model, or "" if none exists."""
    if (bundled_model_dir() / "model.safetensors").exists():
        return None
    others = sorted(p.parent.name for p in bundled_model_dir().parent.glob("*/model.safetensors"))
    return f"bundled:{others[0]}" if others else ""


SPEC = _bundled_model_spec()


@pytest.fixture(autouse=True, scope="module")
def bundled_assets_are_committed():
    """The dataset and weights are committed files: if one is missing the tests fail, not skip."""
    assert (bundled_dataset_dir() / "dataset.json").exists(), "bundled dataset missing from assets/datasets/"
    assert SPEC != "", "no bundled model in assets/models/"


@pytest.fixture(autouse=True)
def bundled_env(monkeypatch):
    monkeypatch.delenv("CP2IMAGE_ASSETS", raising=False)
    if SPEC:
        monkeypatch.setenv("CP2IMAGE_MODEL", SPEC)
    else:
        monkeypatch.delenv("CP2IMAGE_MODEL", raising=False)
    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", DownloadRecorder)


def test_home_names_the_bundled_dataset_and_weights():
    at = start_app(timeout=180)
    assert not at.error, [e.value for e in at.error]
    assert any("bundled" in c.value for c in at.caption)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_works_on_the_bundled_assets(page):
    at = open_page(start_app(timeout=180), page)
    assert not at.error, [e.value for e in at.error]


def test_pca_click_on_the_bundled_latrunculin_line_generates_a_cell():
    at = open_page(start_app(timeout=180), "pca_explorer")
    assert at.selectbox(key="pca_compound").value == "latrunculin B"
    assert at.selectbox(key="pca_end").value == 3.0
    spec = plotly_spec(at)
    line = [t for t in spec["data"] if t.get("name", "").startswith("DMSO →")][0]
    x, y, t = (trace_values(line[k]) for k in ("x", "y", "customdata"))
    k = len(x) // 3
    point = {"curve_number": spec["data"].index(line), "point_number": k, "point_index": k, "x": x[k], "y": y[k],
             "customdata": t[k]}
    at.session_state["pca_chart"] = {"selection": {"points": [point], "point_indices": [k], "box": [], "lasso": []}}
    at.run()
    assert not at.exception and image_captions(at)[0] == "generated"

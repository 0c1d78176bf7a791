"""The sidebar's dataset and model choice, driven through AppTest on the tiny app fixture assets.

Every page runs on the chosen dataset; a dataset lacking the model's features gets one
message naming them; CP2IMAGE_DATA sets the default; hosted mode offers only allowlisted
models; no page shows the server folder a dataset or model lives in.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))  # the app tests' fixture builders

from app_fixture_assets import FEATURES, make_assets  # noqa: E402
from app_harness import PAGES, open_page, start_app  # noqa: E402

from cp2image.data.dataset import open_dataset, write_dataset  # noqa: E402

BUNDLED_LABEL = "bbbc021-sim (bundled, simulated)"
N_SUBSET = 60  # cells in the second dataset, so a page shows which dataset it runs on
DROPPED = "Cells_AreaShape_Eccentricity"


@pytest.fixture(scope="module")
def server_dirs(tmp_path_factory) -> dict[str, Path]:
    """Fixture assets + a data root holding `lab/screen-b` (a 60-cell subset) and `lab/no-ecc`
    (the same cells without one of the model's features)."""
    base = tmp_path_factory.mktemp("choices")
    assets = make_assets(base / "assets")
    full = open_dataset(assets / "datasets" / "bbbc021-sim")
    keep = np.r_[0:30, 30:60]  # DMSO and latrunculin B cells
    images, cells = np.asarray(full.images)[keep], full.cells.iloc[keep].reset_index(drop=True)
    meta = {"features": FEATURES, "provenance": {"source": "tests/hub subset", "simulated": True}}
    root = base / "data-root"
    write_dataset(root / "lab" / "screen-b", images, cells, meta)
    write_dataset(root / "lab" / "no-ecc", images, cells.drop(columns=[DROPPED]),
                  {**meta, "features": [f for f in FEATURES if f != DROPPED]})
    return {"assets": assets, "root": root}


@pytest.fixture
def app_env(server_dirs, monkeypatch):
    from app_harness import DownloadRecorder

    monkeypatch.setenv("CP2IMAGE_ASSETS", str(server_dirs["assets"]))
    monkeypatch.setenv("CP2IMAGE_DATA_ROOTS", str(server_dirs["root"]))
    for name in ("CP2IMAGE_MODEL", "CP2IMAGE_DATA", "CP2IMAGE_HOSTED", "CP2IMAGE_ALLOWED_MODELS", "HF_HOME",
                 "MPLCONFIGDIR", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # recorded, so hosted-mode changes are undone after
        if not os.environ[name]:
            monkeypatch.delenv(name)
    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", DownloadRecorder)
    return server_dirs


def shown_text(at) -> str:
    """Every string the page sends to the browser (labels, values, captions, options, help)."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def cells_metric(at) -> str:
    return {m.label.lower(): m.value for m in at.metric}["cells"]


def test_the_sidebar_offers_the_bundled_screen_and_datasets_under_the_allowed_roots(app_env):
    at = start_app()
    box = at.sidebar.selectbox(key="dataset_choice")
    assert box.options == [BUNDLED_LABEL, "data-root/lab/no-ecc", "data-root/lab/screen-b"]
    assert box.value == BUNDLED_LABEL and cells_metric(at) != f"{N_SUBSET:,}"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_on_the_chosen_dataset_without_showing_its_folder(app_env, page):
    at = start_app()
    at.sidebar.selectbox(key="dataset_choice").select("data-root/lab/screen-b").run()
    assert cells_metric(at) == f"{N_SUBSET:,}"
    open_page(at, page)
    assert not at.exception and not at.error, [e.value for e in at.error]
    text = shown_text(at)
    assert str(app_env["root"]) not in text and str(app_env["assets"]) not in text


def test_a_dataset_without_the_models_features_names_the_missing_ones(app_env):
    at = start_app()
    at.sidebar.selectbox(key="dataset_choice").select("data-root/lab/no-ecc").run()
    open_page(at, "pca_explorer")
    assert [e.value for e in at.error] == [
        f"The model reads {len(FEATURES)} CellProfiler features and the dataset no-ecc lacks 1 of them: {DROPPED}. "
        "Choose a model trained on this dataset's features, or measure them with `cp2image features`."
    ]


def test_cp2image_data_sets_the_default_dataset(app_env, monkeypatch):
    monkeypatch.setenv("CP2IMAGE_DATA", str(app_env["root"] / "lab" / "screen-b"))
    at = start_app()
    assert at.sidebar.selectbox(key="dataset_choice").value == "screen-b (CP2IMAGE_DATA)"
    assert cells_metric(at) == f"{N_SUBSET:,}"


def test_hosted_mode_offers_only_the_allowlisted_models(app_env, monkeypatch):
    monkeypatch.setenv("CP2IMAGE_HOSTED", "1")
    monkeypatch.setenv("CP2IMAGE_ALLOWED_MODELS", "some-lab/cp2image-sim")
    at = start_app()
    assert not at.sidebar.text_input  # nothing to type a path or an arbitrary id into
    box = at.sidebar.selectbox(key="model_spec")
    assert box.options == ["default", "cp2image-sim", "some-lab/cp2image-sim"]
    box.select("some-lab/cp2image-sim").run()  # offline and not cached: falls back with a notice
    notices = [w.value for w in at.warning] + [w.value for w in at.sidebar.warning]
    assert any("'some-lab/cp2image-sim' is not in the local Hugging Face cache" in n for n in notices), notices


def test_a_link_with_the_dataset_and_model_reopens_them(app_env):
    from streamlit.testing.v1 import AppTest

    from app_harness import HOME

    at = AppTest.from_file(str(HOME), default_timeout=60)
    at.query_params["dataset_choice"] = "data-root/lab/screen-b"
    at.query_params["model_spec"] = "cp2image-sim"
    at.run()
    assert not at.exception and not at.error
    assert cells_metric(at) == f"{N_SUBSET:,}" and at.sidebar.text_input(key="model_spec").value == "cp2image-sim"


def test_a_link_to_a_dataset_the_server_does_not_offer_opens_the_default(app_env):
    from streamlit.testing.v1 import AppTest

    from app_harness import HOME

    at = AppTest.from_file(str(HOME), default_timeout=60)
    at.query_params["dataset_choice"] = "/etc"
    at.run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="dataset_choice").value == BUNDLED_LABEL


def test_a_hub_model_from_the_cache_brings_its_card_and_evaluation_to_the_pages(app_env, monkeypatch, tmp_path):
    from hub_cache import add_snapshot, model_files

    files = model_files(app_env["assets"] / "models" / "cp2image-sim")
    files["README.md"] = files["README.md"].replace(b"# Test model", b"# Hub copy of the test model")
    add_snapshot(tmp_path / "hf", "some-lab/cp2image-test", files, commit="c" * 40)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("CP2IMAGE_MODEL", "some-lab/cp2image-test")
    at = start_app()
    assert not at.sidebar.warning and any("hub: some-lab/cp2image-test (ccccccc)" in c.value for c in at.sidebar.caption)
    open_page(at, "model_card")
    assert not at.error and any("Hub copy of the test model" in m.value for m in at.markdown)  # the snapshot's card
    open_page(at, "correlation_report")
    assert not at.error and at.metric  # evaluation/ from the snapshot
    assert str(tmp_path) not in shown_text(at)


def test_a_cp2image_data_that_is_no_dataset_is_reported_and_the_bundled_screen_used(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("CP2IMAGE_DATA", str(tmp_path / "typo"))
    at = start_app()
    assert [w.value for w in at.sidebar.warning] == [
        "CP2IMAGE_DATA does not point at a cp2image dataset folder (one holding dataset.json); "
        "the list offers the other datasets."]
    assert at.sidebar.selectbox(key="dataset_choice").value == BUNDLED_LABEL and not at.error

"""Feature perturbation page: coupled (default) and single sweeps, slope first, visible clipping,
moved-with list, readable labels and µm² captions, choices in the URL (issues 13 and 15)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from app_harness import csv_frame, download, image_captions, open_page, pdf_pages, png_size, start_app, svg_root_tag

PAGE = "feature_perturbation"


@pytest.fixture(scope="module")
def coupled_assets(app_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture assets plus a feature coupling fitted on the fixture's training cells."""
    from cp2image.analysis.coupling import fit_coupling, save_coupling
    from cp2image.data.dataset import open_dataset
    from cp2image.models import CP2Image

    root = tmp_path_factory.mktemp("coupled-assets")
    shutil.copytree(app_assets, root, dirs_exist_ok=True)
    model_dir = root / "models" / "cp2image-sim"
    cells = open_dataset(root / "datasets" / "bbbc021-sim").cells
    model = CP2Image.from_pretrained(model_dir)
    save_coupling(fit_coupling(model, cells.loc[cells["Metadata_Split"] == "train"]), model_dir)
    return root


@pytest.fixture
def coupled_env(coupled_assets: Path, app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(coupled_assets))
    return coupled_assets


def _requested(caption: str) -> float:
    """'1,390* → 1,430' → 1390.0: the requested value."""
    return float(caption.split(" → ")[0].rstrip("*").replace(",", "").replace("−", "-"))


def test_coupled_is_the_default_and_leads_with_slope_beside_rho(coupled_env):
    at = open_page(start_app(), PAGE)
    assert at.radio(key="pert_mode").value == "coupled"
    assert at.radio(key="pert_mode").options == ["With its correlated features", "This feature only"]
    assert [m.label for m in at.metric][:2] == ["Slope", "Spearman ρ"]
    assert not at.error


def test_captions_are_plain_numbers_in_square_micrometres_and_the_crop_says_simulated(coupled_env):
    at = open_page(start_app(), PAGE)
    captions = image_captions(at)
    assert captions[0] == "simulated cell"  # the fixture's provenance says simulated
    assert len(captions) == 1 + 9
    requested = [_requested(c) for c in captions[1:]]
    assert requested == sorted(requested) and requested[0] < requested[-1]
    assert not any(re.search(r"\de[+-]\d", c) for c in captions)  # never 1.39e+03
    # the unit is said once, in the heading, so that "1,390 → 1,430" fits under a crop on one line
    assert any(s.value == "Nucleus area (Nuclei_AreaShape_Area): requested → measured (µm²)" for s in at.subheader)
    # areas are shown in µm² with the dataset's pixel size (0.65 µm: 1 px² = 0.4225 µm²)
    raw = csv_frame(download(at, "dl_pert_strip_csv"))["requested"]
    np.testing.assert_allclose(requested, raw * 0.65 ** 2, rtol=5e-3)  # captions carry 3 significant figures


def test_coupled_sweep_lists_the_features_that_moved_with_their_sizes(coupled_env):
    at = open_page(start_app(), PAGE)
    assert len(at.dataframe) == 1  # the moved-with table
    table = at.dataframe[0].value
    assert len(table) == 9  # the fixture model has 10 features: every other one is listed
    assert list(table.columns) == ["feature", "first → last step", "change (SD)", "correlation with the swept feature"]
    # nucleus perimeter and integrated DNA grow with the nucleus area in the fixture cells
    top = list(table["feature"][:3])
    assert "Nucleus perimeter (Nuclei_AreaShape_Perimeter)" in top
    assert table["change (SD)"].abs().iloc[0] >= table["change (SD)"].abs().iloc[-1]
    assert all("→" in s for s in table["first → last step"])


def test_single_mode_moves_nothing_else(coupled_env):
    at = open_page(start_app(), PAGE)
    at.radio(key="pert_mode").set_value("single").run()
    assert not at.exception and not at.error
    assert len(at.dataframe) == 0  # nothing else moved: no moved-with table
    assert len(image_captions(at)) == 10


def test_clipped_requests_are_said_in_a_visible_warning_not_a_folded_one(coupled_env):
    at = open_page(start_app(), PAGE)
    at.selectbox(key="pert_feature").set_value("Cytoplasm_AreaShape_Area").run()
    at.slider(key="pert_span_sd").set_value(5.0).run()
    assert not at.exception
    clip = [w.value for w in at.warning if "clipped" in w.value]
    assert clip and "valid range" in clip[0], [w.value for w in at.warning]
    assert not any("clipped" in e.label for e in at.expander)  # not folded away
    assert any("*" in c for c in image_captions(at)[1:])


def test_a_model_folder_without_coupling_offers_single_only_and_says_why(app_env):
    at = open_page(start_app(), PAGE)
    assert at.radio(key="pert_mode").options == ["This feature only"]
    assert any("no feature coupling" in i.value and "--fit-coupling" in i.value for i in at.info)
    assert len(image_captions(at)) == 10 and not at.error


def test_a_link_reopens_this_cell_and_this_sweep(coupled_env):
    at = start_app()
    # Streamlit writes an option into the URL as it is shown: the readable label with the CellProfiler name
    for key, value in {"pert_feature": "Cell area (Cells_AreaShape_Area)", "pert_steps": "5",
                       "pert_mode": "This feature only", "pert_cell": "3"}.items():
        at.query_params[key] = value
    at = open_page(at, PAGE)
    assert at.selectbox(key="pert_feature").value == "Cells_AreaShape_Area"
    assert at.radio(key="pert_mode").value == "single"
    assert at.number_input(key="pert_cell").value == 3
    assert len(image_captions(at)) == 1 + 5


def test_a_stale_link_falls_back_with_a_note(app_env):
    at = start_app()
    at.query_params["pert_mode"] = "coupled"  # this model folder has no coupling
    at.query_params["pert_feature"] = "Not_A_Feature"
    at = open_page(at, PAGE)
    assert at.radio(key="pert_mode").value == "single"
    assert at.selectbox(key="pert_feature").value == "Nuclei_AreaShape_Area"
    notes = " ".join(i.value for i in at.info)
    assert "Not_A_Feature" in notes and "does not offer" in notes


def test_strip_downloads_are_valid_png_svg_pdf_csv(coupled_env):
    at = open_page(start_app(), PAGE)
    at.slider(key="pert_steps").set_value(5).run()
    width, height = png_size(download(at, "dl_pert_strip_png"))
    assert width > 5 * 68 and height > 68
    assert svg_root_tag(download(at, "dl_pert_strip_svg")).endswith("svg")
    assert pdf_pages(download(at, "dl_pert_strip_pdf")) >= 1
    table = csv_frame(download(at, "dl_pert_strip_csv"))
    assert len(table) == 5 and set(table["mode"]) == {"coupled"}
    assert np.all(np.diff(table["requested"]) > 0)
    moved = csv_frame(download(at, "dl_pert_moved"))
    assert {"feature", "shift", "shift_sd"} <= set(moved.columns) and len(moved) == 9


def test_a_stale_coupling_is_named_without_a_server_path(coupled_assets, app_env, monkeypatch, tmp_path):
    """A coupling left from an earlier training: single only, the reason in plain words, no folder path."""
    import json

    root = tmp_path / "assets"
    shutil.copytree(coupled_assets, root)
    config = root / "models" / "cp2image-sim" / "config.json"
    data = json.loads(config.read_text())
    data["feature_scale"][0] *= 1.5  # as if the model had been retrained
    config.write_text(json.dumps(data))
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(root))
    at = open_page(start_app(), PAGE)
    assert at.radio(key="pert_mode").options == ["This feature only"]
    notes = [i.value for i in at.info if "Only" in i.value]
    assert notes and "different feature normalisation" in notes[0], [i.value for i in at.info]
    assert str(root) not in notes[0] and "/tmp" not in notes[0]


def test_without_a_critic_the_refine_toggle_is_off_disabled_and_says_why(coupled_env):
    """The fixture model ships no critic/: the sweep is the generator as drawn, and the page says so."""
    at = open_page(start_app(), PAGE)
    toggle = at.toggle(key="pert_refine")
    assert toggle.value is False and toggle.disabled
    assert any("has no critic" in c.value for c in at.caption)
    assert not any("refined with the critic" in c.value for c in at.caption)

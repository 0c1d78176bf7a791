"""A biologist's first hour (issue 15): honest labels, readable numbers, explained metrics, shareable views.

Unit tests of the helpers in cp2image.app_support, then the pages through AppTest on the
tiny fixture assets (whose dataset.json says its crops are simulated).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app_fixture_assets import FEATURES
from app_harness import image_captions, open_page, plotly_spec, start_app, trace_values
from cp2image.evaluation.files import undefined_reasons
from cp2image.analysis.example_cell import typical_control_cell
from cp2image.analysis.domain import OutOfRange
from cp2image.app_support.input_range import plain_warning
from cp2image.models.card import hide_server_paths, plain_summary
from cp2image.app_support.pca_click import (
    ClickedPoint,
    click_from_text,
    click_to_text,
    dose_direction_sentence,
)


# -- helpers ------------------------------------------------------------------------------------
def test_the_example_cell_is_the_control_cell_nearest_the_control_median():
    cells = pd.DataFrame({"Metadata_Compound": ["DMSO", "DMSO", "DMSO", "taxol", "DMSO"],
                          "a": [1.0, 10.0, 2.0, 2.0, 3.0], "b": [5.0, 5.0, 6.0, 6.0, 7.0]})
    # control medians a = 2.5, b = 5.5; MADs a = 1.0, b = 1.0 → cell 2 (a 2, b 6) is nearest (ties: first)
    assert typical_control_cell(cells, ["a", "b"]) == 2
    with pytest.raises(ValueError, match="none of the 1 model features"):
        typical_control_cell(cells, ["zzz"])


def test_out_of_range_features_are_named_with_their_distance_and_the_reason():
    """Which features are out and how far is `analysis.domain.beyond_training_range` (tests/analysis/test_domain.py)."""
    text = plain_warning([OutOfRange("Nuclei_AreaShape_Area", 15.0)], limit=10.0, why="the click is far from every cell.")
    assert text.startswith("1 feature of this profile is more than 10 SD from the training cells' average")
    assert "Nucleus area (Nuclei_AreaShape_Area) at +15 SD" in text and text.endswith("far from every cell.")
    assert plain_warning([], limit=10.0, why="-") == ""


@pytest.mark.parametrize("click", [
    ClickedPoint(1.5, -2.25, True, 0.5, None), ClickedPoint(3.0, 4.0, False, None, 17),
    ClickedPoint(-0.125, 8.0, False, None, None)])
def test_a_click_survives_the_url_round_trip(click):
    assert click_from_text(click_to_text(click, compound="taxol"), compound="taxol") == click


@pytest.mark.parametrize(("text", "problem"), [
    ("taxol|line|0.5|1|2", "made in the PCA of 'taxol'"), ("nocodazole|wobble||1|2", "unknown click kind"),
    ("nocodazole|point||x|2", "not a number"), ("nocodazole|point||nan|2", "non-finite"), ("junk", "not a PCA click")])
def test_a_broken_or_foreign_click_is_refused_with_its_reason(text, problem):
    with pytest.raises(ValueError, match=problem):
        click_from_text(text, compound="nocodazole")


def test_the_dose_line_angle_is_said_in_words():
    """The angle itself is `analysis.trajectory.line_angle_degrees` (tests/analysis/test_trajectory.py)."""
    assert "lines up along PC1" in dose_direction_sentence(10.0, compound="x", end=3.0)
    assert "diagonally" in dose_direction_sentence(49.0, compound="x", end=3.0)


def test_server_paths_are_shortened_but_urls_and_relative_paths_kept():
    text = "cp2image train --data /home/lab/runs/bbbc021-real --out /srv/x.toml; see https://h.org/a/b, ../shared/d.npz"
    assert hide_server_paths(text) == ("cp2image train --data …/runs/bbbc021-real --out …/srv/x.toml; "
                                       "see https://h.org/a/b, ../shared/d.npz")


def test_features_without_r_say_why():
    table = pd.DataFrame({"feature": ["a", "b", "c"], "pearson_r": [0.5, np.nan, np.nan],
                          "real_sd": [1.0, 0.0, 0.2], "generated_sd": [1.0, 0.0, 0.0], "n_pairs": [9, 9, 9]})
    assert undefined_reasons(table).values.tolist() == [
        ["b", "the same value in every real and every generated cell"], ["c", "the same value in every generated cell"]]


def test_the_plain_summary_has_five_lines_built_from_config_and_evaluation():
    class Config:
        provenance = {"dataset_provenance": {"source": "cp2image simulate (virtual BBBC021)"}, "steps": 4000,
                      "training_cells": {"cells": 1953, "compounds": 15, "plates": 8}}

    class Model:
        config, image_size, feature_names = Config(), 68, ["x"] * 492

    table = pd.DataFrame({"feature": ["Nuclei_AreaShape_Area", "Cells_Texture_Entropy_DNA_3_00_256",
                                      "Cells_AreaShape_Area", "Nuclei_Intensity_MeanIntensity_DNA"],
                          "pearson_r": [0.9, 0.1, 0.6, 0.4]})
    lines = plain_summary(Model(), table, n_cells=639)
    assert len(lines) == 5
    assert "492 CellProfiler measurements" in lines[0]
    assert "1,953 simulated cells" in lines[1] and "(15 compounds, 8 plates)" in lines[1]
    assert "on 639 cells it never saw, 50%" in lines[2] and "nucleus area (r 0.90)" in lines[2]
    assert lines[3].startswith("**Weakest:** texture features (median r 0.10)")
    assert "simulator's biology" in lines[4]



def test_the_plain_summary_counts_a_fine_tunes_steps_with_those_it_started_from():
    class Config:
        provenance = {"dataset_provenance": {"source": "cp2image simulate (virtual BBBC021)"}, "steps": 2000,
                      "total_steps": 18000, "training_cells": {"cells": 1740}}

    class Model:
        config, image_size, feature_names = Config(), 68, ["x"] * 492

    assert "18,000 training steps" in plain_summary(Model())[1]

# -- pages ----------------------------------------------------------------------------------------
pytestmark_pages = pytest.mark.usefixtures("app_env")


@pytestmark_pages
def test_home_says_first_that_the_cells_are_simulated_and_shows_one_example_cell():
    at = start_app()
    banner = at.warning[0].value
    assert "Loaded dataset: bbbc021-sim" in banner and "simulated cells" in banner.lower()
    assert image_captions(at)[:2] == ["simulated cell", "generated"]
    assert not any("real cell" in c for c in image_captions(at))


@pytestmark_pages
def test_pca_cell_click_shows_the_cells_own_crop_beside_the_generated_one():
    at = open_page(start_app(), "pca_explorer")
    point = {"curve_number": 0, "point_number": 0, "point_index": 0, "x": 0.5, "y": -0.25, "customdata": 3}
    at.session_state["pca_chart"] = {"selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert image_captions(at)[:2] == ["generated", "this simulated cell"]
    assert any(c.value.startswith("Simulated cells · ") for c in at.markdown)


@pytestmark_pages
def test_a_shared_pca_link_reopens_the_clicked_point_and_a_stale_one_falls_back_with_a_note():
    at = open_page(start_app(), "pca_explorer")
    spec = plotly_spec(at)
    line = [t for t in spec["data"] if t.get("name", "").startswith("DMSO →")][0]
    x, y, t = (trace_values(line[k]) for k in ("x", "y", "customdata"))
    link = start_app()
    link.query_params["pca_compound"] = "latrunculin B"
    link.query_params["pca_click"] = f"latrunculin B|line|{t[20]}|{x[20]}|{y[20]}"
    open_page(link, "pca_explorer")
    assert image_captions(link)[0] == "generated"
    assert any("t = 0.50 on the line" in c.value for c in link.caption)
    stale = start_app()
    stale.query_params["pca_compound"] = "no such drug"
    open_page(stale, "pca_explorer")
    assert stale.selectbox(key="pca_compound").value == "latrunculin B"
    assert any("Compound = 'no such drug'" in i.value for i in stale.info)


@pytestmark_pages
def test_pca_explains_where_the_dose_response_runs():
    at = open_page(start_app(), "pca_explorer")
    assert any("to the PC1 axis" in c.value for c in at.caption)


@pytestmark_pages
def test_far_off_clicks_warn_in_plain_words_which_features_were_capped():
    at = open_page(start_app(), "pca_explorer")
    point = {"curve_number": 1, "point_number": 0, "point_index": 0, "x": 400.0, "y": -300.0, "customdata": -1}
    at.session_state["pca_chart"] = {"selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}}
    at.run()
    warnings = [w.value for w in at.warning if "SD from the training cells' average" in w.value]
    assert warnings, [w.value for w in at.warning]
    assert "Why: the click is away from the cells" in warnings[0]
    assert any(f"({name})" in warnings[0] for name in FEATURES)  # the CellProfiler name beside its readable label


@pytestmark_pages
def test_single_channel_views_are_grey():
    import io

    from PIL import Image

    from app_harness import DownloadRecorder, elements

    at = open_page(start_app(), "moa_interpolation")
    at.segmented_control(key="moa_channels").set_value("DNA").run()
    assert not at.exception
    url = elements(at, "image")[0].proto.imgs[0].url
    png = DownloadRecorder.latest._storage.get_file(url.rsplit("/", 1)[-1]).content
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert pixels.max() > 0 and np.all(pixels[..., 0] == pixels[..., 2]) and np.all(pixels[..., 1] == pixels[..., 2])


def test_render_single_channel_is_grey():
    from cp2image.analysis.render import single_channel

    crops = np.zeros((1, 3, 4, 4), np.uint8)
    crops[0, 0] = 200  # DNA only
    rgb = single_channel(crops, "DNA")
    assert rgb.shape == (1, 4, 4, 3) and np.all(rgb[..., 0] == rgb[..., 2]) and rgb.max() == 200


@pytestmark_pages
def test_correlation_report_explains_its_numbers():
    at = open_page(start_app(), "correlation_report")
    text = " ".join(m.value for m in at.markdown)
    assert "lower is better" in text and "r exists for" in text
    assert all(m.help for m in at.metric)  # each number carries a sentence on what good looks like
    table = at.dataframe[0].value  # the best-preserved table
    assert list(table.columns) == ["r", "Feature", "CellProfiler name"]


@pytestmark_pages
def test_model_card_opens_with_five_plain_lines():
    at = open_page(start_app(), "model_card")
    summary = at.markdown[0].value
    assert summary.startswith("1. **What it does:**") and "\n5. **Use it for:**" in summary


def _profiles_csv(sep: str, decimal: str = ".") -> bytes:
    rows = [{"Metadata_Compound": f"c{i}", **{f: (1.5 + i if decimal == "." else f"{1 + i},5") for f in FEATURES}}
            for i in range(3)]
    return pd.DataFrame(rows).to_csv(index=False, sep=sep).encode()


@pytestmark_pages
@pytest.mark.parametrize(("sep", "decimal", "said"), [(";", ",", "semicolon-separated, decimal comma"),
                                                       ("\t", ".", "tab-separated")])
def test_semicolon_and_tab_uploads_are_read_and_say_so(sep, decimal, said):
    at = open_page(start_app(), "generate_profiles")
    at.file_uploader(key="gen_upload").upload("eu.csv", _profiles_csv(sep, decimal), "text/csv")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert said in at.success[0].value
    assert image_captions(at) == ["row 2 · c0", "row 3 · c1", "row 4 · c2"]



def _start_with_link(params: dict):
    """Home opened from a shared link carrying `params` in its query string."""
    from streamlit.testing.v1 import AppTest

    from app_harness import HOME

    at = AppTest.from_file(str(HOME), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytestmark_pages
def test_a_link_to_a_dataset_this_server_does_not_offer_says_so_on_home():
    at = _start_with_link({"dataset_choice": "someone else's screen"})
    notes = [i.value for i in at.info]
    assert any("Dataset = \"someone else's screen\"" in n and "does not offer" in n for n in notes), notes


def test_the_warm_up_waits_while_a_page_runs_and_goes_on_when_it_ends():
    import sys
    import threading
    import time

    sys.path.insert(0, str(__import__("app_harness").REPO_ROOT / "app"))
    import warmup

    done = threading.Event()
    warmup.run_started()
    waiter = threading.Thread(target=lambda: (warmup._wait_for_idle_pages(), done.set()))
    waiter.start()
    time.sleep(0.3)
    assert not done.is_set(), "the warm-up must not run while a page script runs"
    warmup.run_finished()
    waiter.join(timeout=5)
    assert done.is_set()
    warmup.run_finished()  # an unbalanced end never drives the count below zero
    assert warmup._active_runs[0] == 0


def test_every_warm_up_step_runs():
    """A step that names a moved or renamed module would only log a warning on the server and warm nothing."""
    import sys

    sys.path.insert(0, str(__import__("app_harness").REPO_ROOT / "app"))
    import warmup

    steps = warmup._steps([])
    names = [name for name, _ in steps]
    assert names[:2] == ["torch", "cp2image.models.cp2image"]  # every page but Home loads the torch model
    assert "charts" in names and names[-1] == "figure imports"
    assert names.index("compiled measurement") < names.index("sklearn.decomposition")  # the perturbation page first
    for name, step in steps:
        step()  # raises if a module is missing


def test_streamlit_run_finds_a_server_app_in_home_whose_import_stays_light():
    """`streamlit run app/Home.py` imports Home.py once to look for an `st.App`; that import defines the app
    (whose start-up hook preloads Home's imports) and imports neither pandas nor torch itself, so the server
    answers the browser at once. Checked in a fresh interpreter, as the server imports it."""
    import subprocess
    import sys

    from app_harness import REPO_ROOT
    from streamlit.web.server.app_discovery import discover_asgi_app

    home = REPO_ROOT / "app" / "Home.py"
    assert discover_asgi_app(home).is_asgi_app
    code = ("import sys, runpy; sys.path.insert(0, sys.argv[1]); import streamlit as st; "
            "ns = runpy.run_path(sys.argv[2], run_name='Home'); "
            "print(isinstance(ns['app'], st.App), 'page_kit' in ns, *(m in sys.modules for m in ('pandas', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code, str(home.parent), str(home)], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "False", "False", "False"], out.stdout
    assert "No runtime found" not in out.stderr  # no cache decorator runs before the server has its runtime


def test_the_preload_imports_what_homes_first_run_needs():
    """A module renamed or moved would only log a warning on the server and preload nothing after it.
    Nor does it import torch: Home does not need it, and its import would hold the GIL while the server
    sends the browser Streamlit's front end (the warm-up imports it after Home is drawn)."""
    import subprocess
    import sys

    from app_harness import REPO_ROOT

    code = ("import sys, logging; logging.basicConfig(level=logging.WARNING); sys.path.insert(0, sys.argv[1]); "
            "import warmup; warmup.preload(); "
            "print(all(m in sys.modules for m in warmup.PRELOAD_MODULES) and 'torch' not in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT / "app")], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "True" and "preload of" not in out.stderr, out.stderr[-2000:]

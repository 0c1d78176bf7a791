"""Unit tests of the app's presentation helpers (cp2image.app_support), without a server.

What moved beside its pipeline stage is tested there: panels, exports and upload checks in
tests/analysis, saved evaluations in tests/evaluation/test_eval_files.py, the model card in
tests/models/test_card.py, the model's clip warning class in tests/test_warnings.py.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.analysis import panels as report_panels
from cp2image.app_support import charts, vega_charts
from cp2image.app_support.dataset_summary import moa_count
from cp2image.app_support.model_spec import parse_model_choice
from cp2image.app_support.pca_click import clicked_point
from cp2image.app_support.plot_theme import CONTROL_COLOUR, concentration_colours

# -- model choice allowlist ------------------------------------------------------------------
@pytest.fixture
def assets_with_models(tmp_path, monkeypatch):
    for name in ("cp2image-sim", "cp2image-bbbc021-real"):
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "models" / name / "config.json").write_text("{}")
    (tmp_path / "models" / "no-config").mkdir()
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(tmp_path))
    return tmp_path


def test_empty_model_field_means_the_default(assets_with_models):
    assert parse_model_choice("  ").spec is None
    assert parse_model_choice(None).kind == "default"


def test_bundled_model_name_maps_to_its_folder(assets_with_models):
    choice = parse_model_choice("cp2image-bbbc021-real")
    assert choice.kind == "bundled"
    assert choice.spec == "bundled:cp2image-bbbc021-real"


def test_hub_ids_are_accepted_as_typed(assets_with_models):
    choice = parse_model_choice("my-lab/cp2image_v1.2")
    assert (choice.kind, choice.spec) == ("hub", "my-lab/cp2image_v1.2")
    assert parse_model_choice("org/name@v1.0").spec == "org/name@v1.0"


def test_hub_like_ids_that_name_a_server_folder_are_refused(assets_with_models, monkeypatch):
    monkeypatch.chdir(assets_with_models)
    with pytest.raises(ValueError, match="names a folder on the server"):
        parse_model_choice("models/cp2image-sim")


@pytest.mark.parametrize("typed", ["/etc/passwd", "../assets/models/x", "./weights", "~/weights", "C:\\weights",
                                   "http://example.com/m", "file:///tmp/x"])
def test_paths_and_urls_are_refused(assets_with_models, typed):
    with pytest.raises(ValueError, match="path or URL"):
        parse_model_choice(typed)


@pytest.mark.parametrize("typed", ["no-config", "single", "a--b/c", "org/.hidden", "org/name.git", "org/na me",
                                   "org/a..b", "a/b/c", "x" * 97 + "/y", "org/name-"])
def test_malformed_hub_ids_are_refused(assets_with_models, typed):
    with pytest.raises(ValueError, match="not a Hugging Face Hub id"):
        parse_model_choice(typed)


# -- PCA clicks --------------------------------------------------------------------------------
def _event(point):
    return {"selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}}


def test_no_selection_is_no_click():
    assert clicked_point(None) is None
    assert clicked_point({"selection": {"points": [], "point_indices": [], "box": [], "lasso": []}}) is None
    assert clicked_point(_event({"x": float("nan"), "y": 1.0})) is None


def test_a_click_on_the_line_carries_its_t():
    click = clicked_point(_event({"curve_number": 4, "x": 1.5, "y": -2.0, "customdata": [0.25]}), line_curve=4)
    assert (click.pc1, click.pc2, click.on_line, click.t, click.cell) == (1.5, -2.0, True, 0.25, None)


def test_a_click_on_a_cell_carries_its_row_label():
    click = clicked_point(_event({"curve_number": 1, "x": 0.0, "y": 3.0, "customdata": 17}), line_curve=4)
    assert (click.on_line, click.t, click.cell) == (False, None, 17)
    mean_click = clicked_point(_event({"curve_number": 3, "x": 0.0, "y": 3.0, "customdata": -1}), line_curve=4)
    assert mean_click.cell is None


# -- theme and charts ---------------------------------------------------------------------------
def test_control_is_grey_and_doses_get_distinct_colours():
    colours = concentration_colours([0.0, 3.0, 0.1, 0.1, 1.0])
    assert colours[0.0] == CONTROL_COLOUR
    assert len({colours[d] for d in (0.1, 1.0, 3.0)}) == 3


def _scores():
    return pd.DataFrame({"PC1": [0.0, 0.1, 1.0, 1.1], "PC2": [0.0, 0.1, 1.0, 0.9],
                         "group": ["DMSO", "DMSO", "x 3 µM", "x 3 µM"], "concentration": [0.0, 0.0, 3.0, 3.0]},
                        index=[10, 11, 12, 13])


def test_pca_chart_has_one_trace_per_group_then_means_then_the_clickable_line():
    line = pd.DataFrame({"t": np.linspace(0, 1, 5), "PC1": np.linspace(0, 1, 5), "PC2": np.linspace(0, 1, 5)})
    means = pd.DataFrame({"group": ["DMSO", "x 3 µM"], "concentration": [0.0, 3.0], "PC1": [0.05, 1.05], "PC2": [0.05, 0.95]})
    fig = charts.pca_scatter(_scores(), line, group_means=means, explained=[0.6, 0.25], line_name="L")
    assert [t.name for t in fig.data] == ["DMSO", "x 3 µM", "group means", "L"]
    assert list(fig.data[0].customdata) == [10, 11]
    assert list(fig.data[-1].customdata) == list(line["t"])
    assert fig.layout.xaxis.title.text == "PC1 (60% of variance)"
    with pytest.raises(ValueError, match="'group'"):
        charts.pca_scatter(_scores().drop(columns="group"))


def test_histogram_title_states_the_fraction_above_threshold():
    from cp2image.app_support import selection_charts

    table = pd.DataFrame({"feature": list("abcde"), "pearson_r": [0.9, 0.6, 0.2, -0.1, np.nan]})
    spec = selection_charts.correlation_histogram(table, threshold=0.5).to_dict()
    assert spec["title"] == "50% of 4 features have r > 0.5"
    assert [p["name"] for p in spec["params"]] == [selection_charts.BRUSH]  # the brush the page reads back
    panel = report_panels.correlation_histogram_panel(table, threshold=0.5)  # the downloads: same numbers
    assert panel.meta["fraction_above"] == 0.5


def test_a_brushed_range_of_r_lists_the_features_its_bars_count():
    from cp2image.app_support import selection_charts

    table = pd.DataFrame({"feature": list("abcdefg"), "pearson_r": [0.91, 0.52, 0.49, -0.3, np.nan, 1.0, 0.5]})
    bins = selection_charts.binned_r(table)
    assert bins["features"].sum() == 6 and len(bins) == 40  # NaN has no bar; 0.05-wide bars on [-1, 1]
    event = {"selection": {selection_charts.BRUSH: {"r_low": [0.55, 0.45]}}}
    low, high = selection_charts.selected_range(event)
    assert (low, high) == (0.45, 0.55)
    chosen = selection_charts.features_in_range(table, low, high)
    assert chosen["feature"].tolist() == ["b", "g", "c"]  # best first; exactly the bars [0.45, 0.5) and [0.5, 0.55)
    for r_low, count in zip(bins["r_low"], bins["features"]):  # every bar's count = the rows a brush on it lists
        assert len(selection_charts.features_in_range(table, r_low - 0.01, r_low + 0.01)) == count
    # a brush from -0.03 covers part of the bar [-0.05, 0) but not its left edge: Vega-Lite leaves it unlit
    assert selection_charts.features_in_range(pd.DataFrame({"pearson_r": [-0.04, 0.02]}), -0.03, 0.43)[
        "pearson_r"].tolist() == [0.02]
    assert selection_charts.selected_range({"selection": {}}) is None
    assert selection_charts.selected_range(None) is None


def test_feature_scatter_drops_non_finite_pairs_and_draws_identity():
    pairs = pd.DataFrame({"real": [1.0, 2.0, np.nan, 4.0], "generated": [1.5, np.inf, 3.0, 3.0]})
    chart = vega_charts.feature_scatter(pairs, "f", r=0.42)
    points, identity = vega_charts.layer_data(chart, 0), vega_charts.layer_data(chart, 1)
    assert list(points["real"]) == [1.0, 4.0] and list(points["generated"]) == [1.5, 3.0]
    assert (list(identity["real"]), list(identity["generated"])) == ([1.0, 4.0], [1.0, 4.0])
    assert chart.title.endswith("(r = 0.42)")


def test_feature_scatter_draws_areas_in_square_microns_with_pixels_in_the_tooltip():
    pairs = pd.DataFrame({"real": [100.0, 200.0], "generated": [110.0, 190.0]})
    chart = vega_charts.feature_scatter(pairs, "Cells_AreaShape_Area", r=0.9, pixel_size_um=0.5)
    points = vega_charts.layer_data(chart, 0)
    assert list(points["real"]) == [25.0, 50.0] and list(points["real_px"]) == [100.0, 200.0]
    spec = chart.to_dict()
    tips = [t["title"] for t in spec["layer"][0]["encoding"]["tooltip"]]
    assert tips == ["real (µm²)", "generated (µm²)", "real (px²)", "generated (px²)"]
    assert spec["layer"][0]["encoding"]["x"]["title"] == "measured on real cell (µm²)"


# -- page notes, sweep charts ---------------------------------------------------------
def test_warnings_come_back_as_distinct_notes_with_their_class():
    import warnings

    from cp2image.app_support.warning_capture import Note, call_collecting_warnings
    from cp2image.warnings import Cp2ImageWarning, InputClipped, OutsideReference

    def noisy(x, *, twice):
        warnings.warn("clipped 2 values", InputClipped)
        if twice:
            warnings.warn("clipped 2 values", InputClipped)
            warnings.warn("extrapolating", OutsideReference)
            warnings.warn("something else", RuntimeWarning)
        return x * 2

    result, notes = call_collecting_warnings(noisy, 3, twice=True)
    assert result == 6
    assert notes == [Note(InputClipped, "clipped 2 values"), Note(OutsideReference, "extrapolating"),
                     Note(RuntimeWarning, "something else")]
    assert notes[0].is_a(InputClipped) and notes[0].is_a(Cp2ImageWarning) and not notes[0].is_a(OutsideReference)
    assert notes[0].title == InputClipped.summary  # the heading comes from the class, not from the text
    assert notes[2].title == "RuntimeWarning from a library"
    assert call_collecting_warnings(noisy, 1, twice=False) == (2, [Note(InputClipped, "clipped 2 values")])


def test_sweep_and_cosine_charts_plot_the_table_values():
    table = pd.DataFrame({"requested": [1.0, 2.0, 3.0], "measured": [1.1, np.nan, 2.9]})
    chart = vega_charts.sweep_chart(table, feature="f", rho=0.5, slope=0.9)
    data = vega_charts.layer_data(chart)
    reference = data[data["series"] == vega_charts.REQUESTED_NAME]
    measured = data[data["series"] == vega_charts.MEASURED_NAME]
    assert list(reference["value"]) == [1.0, 2.0, 3.0]  # the y = x reference
    assert np.allclose(measured["value"], [1.1, np.nan, 2.9], equal_nan=True)
    assert list(measured["requested"]) == [1.0, 2.0, 3.0]
    assert chart.title == "requested vs measured (slope = 0.90, Spearman ρ = 0.50)"  # slope leads
    cos = vega_charts.cosine_chart({"A": pd.DataFrame({"step": [0, 1], "cosine": [0.0, 1.0]}),
                                    "B": pd.DataFrame({"step": [0, 1], "cosine": [0.0, 0.5]})})
    data = vega_charts.layer_data(cos)
    assert list(data.loc[data["target MoA"] == "A", "cosine"]) == [0.0, 1.0]
    assert cos.to_dict()["encoding"]["color"]["scale"]["domain"] == ["A", "B"]


def test_the_home_page_counts_mechanisms_of_action_without_the_control_or_missing_labels():
    cells = pd.DataFrame({"Metadata_MoA": ["DMSO", "Eg5 inhibitors", None, "Actin disruptors", "Eg5 inhibitors"]})
    assert moa_count(cells) == 2
    assert moa_count(pd.DataFrame({"x": [1]})) == 0

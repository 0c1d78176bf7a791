"""Every page driven through `streamlit.testing.v1.AppTest` on the tiny fixture assets.

The app is started from app/Home.py exactly as `streamlit run` does and each page is
reached through its st.navigation entry. Downloads are fetched by running the button's
(deferred) callable the way the server does on a click, then parsed.
"""
from __future__ import annotations

import numpy as np
import pytest

from app_fixture_assets import FEATURES, GROUPS
from app_harness import (
    PAGES,
    csv_frame,
    download,
    download_keys,
    elements,
    image_captions,
    open_page,
    pdf_pages,
    plotly_spec,
    png_size,
    start_app,
    svg_root_tag,
    trace_values,
    zip_names,
)

pytestmark = pytest.mark.usefixtures("app_env")
N_CELLS = sum(len(doses) * n for _, _, doses, n in GROUPS)


def test_home_shows_dataset_model_and_citation():
    at = start_app()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Cells"] == f"{N_CELLS:,}"
    assert metrics["Compounds"] == str(len(GROUPS))
    assert metrics["Input features"] == str(len(FEATURES))
    assert any("bundled" in c.value or "local" in c.value for c in at.caption), [c.value for c in at.caption]
    assert any("CP2Image" in code.value for code in at.code)
    assert not at.error


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_with_a_title_and_no_error(page):
    at = open_page(start_app(), page)
    assert len(at.title) == 1
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_only_the_pca_explorer_draws_with_plotly(page):
    """A page's first Plotly chart makes the browser load and compile Plotly's 4.6 MB front end (~1-3 s in
    headless Chromium, docs/app-first-use.md): the simple charts are Altair, whose 0.8 MB front end the
    correlation report's brush needs anyway; only the PCA explorer's clickable scatter stays Plotly."""
    at = open_page(start_app(), page)
    assert bool(elements(at, "plotly_chart")) == (page == "pca_explorer")
    expected_altair = {"feature_perturbation": 1, "moa_interpolation": 1, "correlation_report": 2}
    assert len(elements(at, "vega_lite_chart")) == expected_altair.get(page, 0)


@pytest.mark.parametrize("page, stem", [("feature_perturbation", "dl_pert_chart"), ("moa_interpolation", "dl_moa_cosine"),
                                        ("correlation_report", "dl_corr_scatter")])
def test_every_altair_chart_stays_downloadable_as_png_svg_pdf_and_csv(page, stem):
    """The charts drawn with Altair are exported through the same matplotlib panels as before."""
    at = open_page(start_app(), page)
    assert png_size(download(at, f"{stem}_png"))[0] > 0
    assert svg_root_tag(download(at, f"{stem}_svg")).endswith("svg")
    assert pdf_pages(download(at, f"{stem}_pdf")) >= 1
    assert len(csv_frame(download(at, f"{stem}_csv"))) > 0


def test_perturbation_sweeps_the_chosen_feature_into_one_image_per_step():
    at = open_page(start_app(), "feature_perturbation")
    assert at.selectbox(key="pert_feature").value == "Nuclei_AreaShape_Area"
    assert {"pert_compound", "pert_dose", "pert_feature"} <= {s.key for s in at.selectbox}
    assert at.slider(key="pert_steps").value == 9
    captions = image_captions(at)
    assert captions[0] == "simulated cell"  # the fixture dataset's provenance says simulated
    assert len(captions) == 1 + 9
    at.slider(key="pert_steps").set_value(5).run()
    assert not at.exception
    captions = image_captions(at)
    assert len(captions) == 1 + 5
    requested = [float(c.split(" → ")[0].rstrip("*").replace(",", "")) for c in captions[1:]]  # "1,390 → 1,430 µm²"
    assert requested == sorted(requested) and requested[0] < requested[-1]
    assert [m.label for m in at.metric][:2] == ["Slope", "Spearman ρ"]  # slope leads (issue 13)
    at.slider(key="pert_span_sd").set_value(5.0).run()
    assert any("outside" in w.value for w in at.warning), "clipping/extrapolation must be visible on the page"


def test_perturbation_downloads_are_valid_png_svg_pdf_csv():
    at = open_page(start_app(), "feature_perturbation")
    at.slider(key="pert_steps").set_value(5).run()
    width, height = png_size(download(at, "dl_pert_strip_png"))
    assert width > 5 * 68 and height > 68  # 300 dpi: a strip of 5 crops
    assert svg_root_tag(download(at, "dl_pert_strip_svg")).endswith("svg")
    assert pdf_pages(download(at, "dl_pert_strip_pdf")) >= 1
    table = csv_frame(download(at, "dl_pert_strip_csv"))
    assert len(table) == 5 and set(table["feature"]) == {"Nuclei_AreaShape_Area"}
    assert np.all(np.diff(table["requested"]) > 0)


def _click(point: dict) -> dict:
    return {"selection": {"points": [point], "point_indices": [point.get("point_index", 0)], "box": [], "lasso": []}}


def test_pca_page_starts_with_latrunculin_and_asks_for_a_click():
    at = open_page(start_app(), "pca_explorer")
    assert at.selectbox(key="pca_compound").value == "latrunculin B"
    assert at.selectbox(key="pca_end").value == 3.0
    assert any("Click a point" in i.value for i in at.info)
    assert len(elements(at, "plotly_chart")) == 1


def test_pca_click_on_the_line_generates_a_cell_beside_real_cells_of_nearest_doses():
    at = open_page(start_app(), "pca_explorer")
    assert "generated" not in image_captions(at)
    spec = plotly_spec(at)
    line = [t for t in spec["data"] if t.get("name", "").startswith("DMSO →")][0]
    curve = spec["data"].index(line)
    x, y, t = (trace_values(line[k]) for k in ("x", "y", "customdata"))
    k = len(x) // 2
    assert t[k] == 0.5
    at.session_state["pca_chart"] = _click({"curve_number": curve, "point_number": k, "point_index": k,
                                            "x": x[k], "y": y[k], "customdata": t[k]})
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    captions = image_captions(at)
    assert captions[0] == "generated"
    assert any("t = 0.50 on the line" in c.value for c in at.caption)
    real = [c for c in captions[1:7] if c != "generated"]
    assert len(real) == 6 and all(c == "DMSO" or c.endswith(" µM") for c in real)
    png_size(download(at, "dl_pca_cell_png"))
    assert "PC1" in csv_frame(download(at, "dl_pca_cell_csv")).columns


def test_pca_click_on_a_cell_uses_the_residual_method():
    at = open_page(start_app(), "pca_explorer")
    at.session_state["pca_chart"] = _click({"curve_number": 0, "point_number": 0, "point_index": 0,
                                            "x": 0.5, "y": -0.25, "customdata": 3})
    at.run()
    assert not at.exception
    assert image_captions(at)[0] == "generated"
    assert any("method: residual" in c.value for c in at.caption)


def test_pca_line_strip_and_chart_downloads():
    at = open_page(start_app(), "pca_explorer")
    captions = image_captions(at)
    assert sum(c.startswith("t = ") for c in captions) == 9
    assert [c for c in captions if "µM" in c or c == "DMSO"][:2] == ["DMSO", "0.1 µM"]
    svg = download(at, "dl_pca_chart_svg")
    assert svg_root_tag(svg).endswith("svg")
    chart_csv = csv_frame(download(at, "dl_pca_chart_csv"))
    assert {"PC1", "PC2"} <= set(chart_csv.columns) and len(chart_csv) > N_CELLS // 2
    assert pdf_pages(download(at, "dl_pca_strip_pdf")) >= 1


def test_moa_interpolation_shows_cosine_under_each_step_rising_to_one():
    at = open_page(start_app(), "moa_interpolation")
    assert at.multiselect(key="moa_targets").value == ["Actin disruptors", "Microtubule stabilizers"]
    at.slider(key="moa_dims").set_value(5).run()
    captions = image_captions(at)
    assert captions[0] == "simulated DMSO"  # the fixture dataset is simulated: never "real"
    strip = captions[: captions.index("simulated target") + 1]
    cosines = [float(c.split()[1]) for c in strip if c.startswith("cos ")]
    assert len(cosines) == 1 + int(np.ceil(len(FEATURES) / 5))  # ceil(p / dims) steps + the start
    assert cosines[0] == 0.0 and cosines[-1] == 1.0
    assert all(b >= a for a, b in zip(cosines, cosines[1:]))
    table = csv_frame(download(at, "dl_moa_cosine_csv"))
    assert set(table["target_moa"]) == {"Actin disruptors", "Microtubule stabilizers"}
    png_size(download(at, "dl_moa_0_png"))


def test_correlation_report_histogram_ranking_and_feature_scatter(app_assets):
    at = open_page(start_app(), "correlation_report")
    import pandas as pd

    r = pd.read_csv(app_assets / "models" / "cp2image-sim" / "evaluation" / "correlation.csv")["pearson_r"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Features with r > 0.5"] == f"{100 * (r > 0.5).mean():.0f}%"
    assert metrics["Fréchet (CP features)"] == "12.5"
    assert any(f"r exists for {len(r)} of the {len(r)} features" in m.value for m in at.markdown)
    assert "FID (Inception)" not in metrics  # null in metrics.json → not shown
    assert len(elements(at, "vega_lite_chart")) == 2  # the brushed histogram and the feature scatter
    assert {"dl_corr_hist_png", "dl_corr_scatter_csv", "dl_corr_top_pdf"} <= set(download_keys(at))
    at.selectbox(key="corr_feature").set_value("Cells_AreaShape_Area").run()
    pairs = csv_frame(download(at, "dl_corr_scatter_csv"))
    assert set(pairs["feature"]) == {"Cells_AreaShape_Area"} and len(pairs) == 40
    hist = csv_frame(download(at, "dl_corr_hist_csv"))
    assert list(hist["pearson_r"]) == sorted(hist["pearson_r"], reverse=True)
    assert png_size(download(at, "dl_corr_top_png"))[0] > 0


def test_correlation_report_shows_the_image_statistics_real_beside_generated_with_downloads(app_assets):
    at = open_page(start_app(), "correlation_report")
    assert any(s.value == "What CellProfiler features miss" for s in at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Edge frame, generated"] == "1.07" and metrics["Actin puncta per crop, generated"] == "0.40"
    assert any(c.value == "real crops: 1.02" for c in at.caption)
    puncta = csv_frame(download(at, "dl_corr_puncta_csv"))
    assert puncta.set_index("class").loc["Actin disruptors", ["real", "generated"]].tolist() == [13.1, 2.0]
    assert png_size(download(at, "dl_corr_puncta_png"))[0] > 0
    assert svg_root_tag(download(at, "dl_corr_puncta_svg")).endswith("svg")


def test_brushing_the_histogram_lists_those_features_with_downloads(app_assets):
    """A drag across the Altair histogram (its interval selection) lists the features in that range of r."""
    import pandas as pd

    from cp2image.app_support.selection_charts import BRUSH

    at = open_page(start_app(), "correlation_report")
    assert "dl_corr_brushed_csv" not in download_keys(at)
    assert any("Drag across the histogram" in c.value for c in at.caption)
    r = pd.read_csv(app_assets / "models" / "cp2image-sim" / "evaluation" / "correlation.csv")["pearson_r"]
    tables = len(at.dataframe)
    at.session_state["corr_hist"] = {"selection": {BRUSH: {"r_low": [-1.0, 1.0]}}}  # a drag over every bar
    at.run()
    assert not at.exception
    assert any(f"{r.notna().sum()} features with r from -1.00 to 1.00" in m.value for m in at.markdown)
    assert len(at.dataframe) == tables + 1
    selected = csv_frame(download(at, "dl_corr_brushed_csv"))
    assert list(selected["pearson_r"]) == sorted(selected["pearson_r"], reverse=True)
    assert sorted(selected["pearson_r"]) == sorted(r.dropna())
    assert svg_root_tag(download(at, "dl_corr_brushed_svg")).endswith("svg")


def _csv(rows: list[dict]) -> bytes:
    import pandas as pd

    return pd.DataFrame(rows).to_csv(index=False).encode()


def _profiles(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"Metadata_Compound": f"c{i}", **{f: float(rng.normal(100, 10)) for f in FEATURES}} for i in range(n)]


def test_extreme_uploaded_values_are_clipped_with_a_visible_warning():
    rows = _profiles(2)
    rows[0]["Nuclei_AreaShape_Area"] = 1e9
    at = open_page(start_app(), "generate_profiles")
    at.file_uploader(key="gen_upload").upload("huge.csv", _csv(rows), "text/csv")
    at.run()
    assert not at.exception and not at.error
    assert any("clip" in w.value.lower() for w in at.warning), [w.value for w in at.warning]
    assert len(image_captions(at)) == 2


def test_generate_from_uploaded_csv_gives_gallery_and_zip():
    at = open_page(start_app(), "generate_profiles")
    at.file_uploader(key="gen_upload").upload("mine.csv", _csv(_profiles(5)), "text/csv")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert image_captions(at) == [f"row {i + 2} · c{i}" for i in range(5)]  # header = row 1
    names = zip_names(download(at, "gen_zip"))
    assert sum(n.endswith(".png") for n in names) == 5 and {"profiles.csv", "images.npy"} <= set(names)
    assert "images/row_2_c0.png" in names
    assert len(csv_frame(download(at, "dl_gen_grid_csv"))) == 5
    template = csv_frame(download(at, "gen_template"))
    assert list(template.columns[-len(FEATURES):]) == FEATURES


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"Nuclei_AreaShape_Area,Foo\n1,2\n", "missing"),
        (b"\xff\xfe\x00\x01garbage", "CSV"),
    ],
)
def test_bad_csv_gets_a_message_naming_the_fix_not_a_traceback(content, expected):
    at = open_page(start_app(), "generate_profiles")
    at.file_uploader(key="gen_upload").upload("bad.csv", content, "text/csv")
    at.run()
    assert not at.exception
    assert at.error and expected in at.error[0].value, [e.value for e in at.error]
    assert not image_captions(at)


def test_uploads_over_the_row_limit_are_refused_before_generating():
    from cp2image.analysis.profiles import UploadLimits

    at = open_page(start_app(), "generate_profiles")
    rows = _profiles(1) * (UploadLimits().max_rows + 1)
    at.file_uploader(key="gen_upload").upload("big.csv", _csv(rows), "text/csv")
    at.run()
    assert at.error and f"more than {UploadLimits().max_rows} rows" in at.error[0].value
    assert not image_captions(at)


def test_nan_rows_are_reported_and_can_be_skipped():
    rows = _profiles(4)
    rows[1]["Cells_AreaShape_Area"] = float("nan")
    at = open_page(start_app(), "generate_profiles")
    at.file_uploader(key="gen_upload").upload("nan.csv", _csv(rows), "text/csv")
    at.run()
    assert at.warning and "1 of 4 rows" in at.warning[0].value
    assert not image_captions(at)
    at.toggle(key="gen_drop").set_value(True).run()
    assert image_captions(at) == ["row 2 · c0", "row 4 · c2", "row 5 · c3"]


def test_duplicated_columns_are_refused():
    at = open_page(start_app(), "generate_profiles")
    header = ",".join(FEATURES + [FEATURES[0]])
    at.file_uploader(key="gen_upload").upload("dup.csv", (header + "\n" + ",".join(["1"] * (len(FEATURES) + 1))).encode(), "text/csv")
    at.run()
    assert at.error and "more than once" in at.error[0].value


def test_model_card_shows_facts_and_card_text():
    at = open_page(start_app(), "model_card")
    assert any("Test model" in m.value for m in at.markdown)
    facts = csv_frame(download(at, "card_facts_download")).astype(str)
    assert dict(zip(facts["fact"], facts["value"]))["input features"] == str(len(FEATURES))
    assert download(at, "card_download").startswith(b"---")


@pytest.mark.parametrize("typed", ["/etc/passwd", "../assets/models/cp2image-sim", "not a hub id!", "tests/app"])
def test_bad_model_choice_shows_a_message_and_falls_back_to_the_default(typed):
    at = start_app()
    at.text_input(key="model_spec").input(typed).run()
    assert not at.exception
    assert at.error, "a refused or unloadable model must be reported on the page"
    assert "default" in at.error[0].value
    assert {m.label: m.value for m in at.metric}["Input features"] == str(len(FEATURES))


def test_unreachable_hub_model_gives_a_visible_notice_and_the_bundled_weights():
    at = start_app()  # tests run with HF_HUB_OFFLINE=1, as a server without network
    at.text_input(key="model_spec").input("org/missing-model").run()
    assert not at.exception and not at.error
    notices = [w.value for w in at.warning] + [w.value for w in at.sidebar.warning]
    assert any("org/missing-model" in n and "bundled" in n for n in notices), notices
    assert {m.label: m.value for m in at.metric}["Input features"] == str(len(FEATURES))


def test_bundled_model_name_is_accepted_in_the_sidebar():
    at = start_app()
    at.text_input(key="model_spec").input("cp2image-sim").run()
    assert not at.error


def test_one_sessions_bad_input_leaves_another_session_alone():
    broken = start_app()
    broken.text_input(key="model_spec").input("/etc/passwd").run()
    assert broken.error
    healthy = start_app()
    assert not healthy.error
    assert [w.value for w in healthy.warning if not w.value.startswith("**Loaded dataset")] == []  # only Home's banner
    open_page(healthy, "feature_perturbation")
    assert len(image_captions(healthy)) == 10 and not healthy.error


def test_server_configured_hub_model_without_network_falls_back_with_a_notice(monkeypatch):
    monkeypatch.setenv("CP2IMAGE_MODEL", "some-lab/cp2image-weights")  # HF_HUB_OFFLINE=1: no network
    at = open_page(start_app(), "feature_perturbation")
    assert not at.error
    assert any("some-lab/cp2image-weights" in w.value and "bundled" in w.value for w in at.warning)
    assert len(image_captions(at)) == 10  # the page still works, on the bundled weights


def test_server_model_set_to_a_bundled_name_loads_that_model(monkeypatch):
    monkeypatch.setenv("CP2IMAGE_MODEL", "cp2image-sim")  # as the sidebar accepts it, without "bundled:"
    at = open_page(start_app(), "feature_perturbation")
    assert not at.error, [e.value for e in at.error]
    assert len(image_captions(at)) == 10


def test_a_misconfigured_server_model_is_named_without_claiming_no_weights_exist(monkeypatch):
    monkeypatch.setenv("CP2IMAGE_MODEL", "no-such-model")
    at = open_page(start_app(), "feature_perturbation")
    assert at.error and "no-such-model" in at.error[0].value
    assert not any("No model weights are available" in i.value for i in at.info)

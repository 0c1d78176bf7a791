"""panels + export: the same panel as PNG (150/300 dpi), SVG, PDF and CSV, offline."""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cp2image.analysis import export, panels
from cp2image.analysis.export import images_zip, safe_name
from cp2image.analysis.interpolate import interpolate_to_moa
from cp2image.analysis.perturb import sweep_feature
from cp2image.analysis.trajectory import CompoundTrajectory
from cp2image.channels import PIXEL_SIZE_UM


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(4, 3, 68, 68), dtype=np.uint8)


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_strip_exports_to_every_format(crops):
    panel = panels.image_strip(crops, ["a", "b", "c", "d"], title="strip")
    png = export.to_png(panel)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert ET.fromstring(export.to_svg(panel)).tag.endswith("svg")
    assert export.to_pdf(panel)[:5] == b"%PDF-"
    table = pd.read_csv(io.BytesIO(export.to_csv(panel)))
    assert list(table["caption"]) == ["a", "b", "c", "d"]


def test_300_dpi_png_has_twice_the_pixels_of_150(crops):
    panel = panels.image_strip(crops, None)
    w150, h150 = png_size(export.to_png(panel, dpi=150))
    w300, h300 = png_size(export.to_png(panel, dpi=300))
    assert abs(w300 - 2 * w150) <= 2 and abs(h300 - 2 * h150) <= 2


def test_vector_exports_are_byte_identical_when_repeated(crops):
    panel = panels.image_strip(crops, ["1", "2", "3", "4"])
    assert export.to_svg(panel) == export.to_svg(panel)
    assert export.to_pdf(panel) == export.to_pdf(panel)


def test_save_is_atomic_and_picks_the_format_from_the_suffix(crops, tmp_path):
    panel = panels.image_strip(crops, None)
    for suffix in ("png", "svg", "pdf", "csv"):
        path = export.save(panel, tmp_path / "out" / f"panel.{suffix}")
        assert path.read_bytes() == export.to_bytes(panel, suffix)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["panel.csv", "panel.pdf", "panel.png", "panel.svg"]
    with pytest.raises(ValueError, match="unknown export format 'tiff'"):
        export.save(panel, tmp_path / "panel.tiff")


def test_scale_bar_length_follows_the_pixel_size(crops):
    panel = panels.image_strip(crops, None, scale_bar_um=10)
    assert panel.meta["scale_bar_px"] == pytest.approx(10 / PIXEL_SIZE_UM)
    with pytest.raises(ValueError, match="must fit in a 68 px crop"):
        panels.image_strip(crops, None, scale_bar_um=100)


def test_caption_count_must_match_the_images(crops):
    with pytest.raises(ValueError, match="3 captions for 4 images"):
        panels.image_strip(crops, ["a", "b", "c"])


def test_grid_rows_may_differ_in_length_and_name_their_channels(crops):
    panel = panels.image_grid([crops, crops[:2]], row_labels=["real", "generated"], row_channels=[None, "Actin"])
    assert len(panel.data) == 6
    assert panel.meta["channels"] == ["DNA (DAPI) blue, β-tubulin red, F-actin green", "F-actin (grey)"]


def test_channel_views_show_merge_and_each_channel(crops):
    panel = panels.channel_views(crops[:2], ["x", "y"])
    assert list(panel.data["row_label"].unique()) == ["merge", "DNA (DAPI)", "β-tubulin", "F-actin"]


def test_analysis_panels_carry_their_numbers(tiny, cells, disc_model):
    sweep = sweep_feature(disc_model, cells.iloc[0], "Nuclei_AreaShape_Area", mode="single", values=[100, 300, 500])
    p = panels.perturbation_panel(sweep, scale_bar_um=10)
    assert list(p.data["requested"]) == [100, 300, 500] and "Spearman ρ = 1.00" in p.title
    chart = panels.requested_vs_measured(sweep.table(), rho=sweep.spearman_rho)
    assert chart.kind == "chart" and list(chart.data["measured"]) == list(sweep.measured)

    interp = interpolate_to_moa(tiny, cells, target_moa="Actin disruptors",
                                real_images=np.zeros((len(cells), 3, 68, 68), np.uint8))
    p = panels.interpolation_panel(interp)
    assert list(p.data["cosine"]) == list(interp.cosine)
    curve = panels.cosine_curve(interp.table())
    assert list(curve.data.columns) == ["step", "n_replaced", "cosine", "cosine_uncentred"]

    traj = CompoundTrajectory.fit(cells, features=list(tiny.feature_names))
    line = traj.line(n_points=5)
    scatter = panels.pca_scatter(traj.scores, line=line, group_means=traj.group_means, point=(1.0, 2.0))
    assert (scatter.data["kind"] == "group mean").sum() == 5
    assert (scatter.data["kind"] == "line").sum() == 5 and (scatter.data["kind"] == "cell").sum() == len(traj.scores)
    real = [(f"{c:g} µM", np.zeros((2, 3, 68, 68), np.uint8)) for c in [0, *traj.concentrations]]
    grid = panels.trajectory_panel(real, line, tiny.generate(line[traj.features]))
    assert list(grid.data["row"]) == ["real"] * 5 + ["generated"] * 5
    for panel in (p, curve, scatter, grid):
        assert export.to_png(panel)[:4] == b"\x89PNG"


@pytest.mark.filterwarnings("ignore:.*outside the range seen")
def test_example_panels_build_and_write_on_a_tiny_model(tiny, cells, tmp_path):
    from cp2image.analysis.examples import ExampleConfig, build_example_panels, write_example_panels

    images = np.random.default_rng(0).integers(0, 255, size=(len(cells), 3, 68, 68), dtype=np.uint8)
    cfg = ExampleConfig(n_steps=3, perturb_features=("Nuclei_AreaShape_Area", "Not_A_Feature"),
                        target_moas=("Actin disruptors",))
    built = build_example_panels(tiny, cells, images, config=cfg)
    assert sorted(built) == ["panel-interpolation", "panel-interpolation-cosine", "panel-latrunculin-line",
                             "panel-latrunculin-pca", "panel-perturbation", "panel-perturbation-measured"]
    line = built["panel-latrunculin-line"].data
    assert list(line["label"][line["row"] == "real"]) == ["DMSO", "0.1 µM", "0.3 µM", "1 µM", "3 µM"]
    paths = write_example_panels({"panel-perturbation": built["panel-perturbation"]}, tmp_path, formats=("png", "csv"))
    assert [p.name for p in paths] == ["panel-perturbation.png", "panel-perturbation.csv"]


def test_pca_scatter_subsamples_large_groups_reproducibly():
    rng = np.random.default_rng(0)
    scores = pd.DataFrame({"PC1": rng.standard_normal(300), "PC2": rng.standard_normal(300),
                           "group": ["DMSO"] * 200 + ["x 1 µM"] * 100, "concentration": [0.0] * 200 + [1.0] * 100})
    a = panels.pca_scatter(scores, max_points_per_group=50)
    b = panels.pca_scatter(scores, max_points_per_group=50)
    assert (a.data["group"] == "DMSO").sum() == 50 and (a.data["group"] == "x 1 µM").sum() == 50
    pd.testing.assert_frame_equal(a.data, b.data)
    with pytest.raises(ValueError, match="missing \\['concentration', 'group'\\]"):
        panels.pca_scatter(scores[["PC1", "PC2"]])


def test_saved_files_are_ordinary_readable_files(crops, tmp_path):
    import os
    import stat

    path = export.save(panels.image_strip(crops, None), tmp_path / "p.png")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]  # no temporary left behind


def _grey_everywhere(png: bytes) -> bool:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


@pytest.mark.parametrize("view", [["DNA"], "DNA", ["Actin"]])
def test_a_single_channel_downloads_in_grey_as_the_app_shows_it(crops, view):
    """The app's channel picker passes ["DNA"]; the PNG and SVG hold that channel in grey, not tinted."""
    import base64
    import re

    from cp2image.analysis import render

    panel = panels.image_strip(crops, ["a", "b", "c", "d"], channels=view, scale_bar_um=10.0)
    channel = view if isinstance(view, str) else view[0]
    canvas = panel.figure.axes[0].images[0].get_array()
    np.testing.assert_array_equal(canvas[:68, :68], render.single_channel(crops, channel)[0])
    assert panel.meta["channels"][0].endswith("(grey)")
    assert _grey_everywhere(export.to_png(panel))
    embedded = re.findall(rb'data:image/png;base64,([A-Za-z0-9+/=\s]+)', export.to_svg(panel))
    assert embedded and all(_grey_everywhere(base64.b64decode(b"".join(e.split()))) for e in embedded)
    np.testing.assert_array_equal(panels.view_rgb(crops, view), render.single_channel(crops, channel))


def test_the_merge_and_two_channel_views_stay_in_the_papers_colours(crops):
    from cp2image.analysis import render

    assert not _grey_everywhere(export.to_png(panels.image_strip(crops, None)))
    np.testing.assert_array_equal(panels.view_rgb(crops, None), render.composite(crops))
    np.testing.assert_array_equal(panels.view_rgb(crops, ["DNA", "Actin"]), render.composite(crops, ["DNA", "Actin"]))


def test_one_composite_rounds_and_the_evaluation_report_uses_it(crops, monkeypatch):
    """render.composite is the only channel → colour mapping; it rounds to the nearest level (the report's
    own copy truncated, so a half-weight colour lost one level)."""
    from cp2image.analysis import render
    from cp2image.analysis.panels.evaluation import examples_figure

    monkeypatch.setitem(render.CHANNEL_COLOURS, "DNA", (0.0, 0.0, 0.5))
    one = np.zeros((1, 3, 2, 2), np.uint8)
    one[:, 0] = 1  # DNA at 1/255 × a colour weight of 0.5 = half a level
    assert render.composite(one)[0, 0, 0].tolist() == [0, 0, 1]
    monkeypatch.undo()
    figure = examples_figure(crops, crops[::-1], paired=True)
    shown = [ax.images[0].get_array() for ax in figure.axes]
    np.testing.assert_array_equal(shown[0], render.composite(crops)[0])
    import cp2image.evaluation.report as report

    assert not hasattr(report, "composite")


# -- image bundles and the correlation/interpolation report panels --------------------------------
def test_zip_holds_one_png_per_cell_the_raw_array_and_the_table():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 3, 8, 8), dtype=np.uint8)
    table = pd.DataFrame({"Metadata_Compound": ["a", "a", "b"], "f": [1.0, 2.0, 3.0]})
    data = images_zip(images, table, names=["a 1", "a 1", "b/µ"], readme="hi")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(archive.namelist())
        assert names == ["README.txt", "images.npy", "images/a_1.png", "images/a_1_00001.png", "images/b.png",
                         "profiles.csv"]
        np.testing.assert_array_equal(np.load(io.BytesIO(archive.read("images.npy")), allow_pickle=False), images)
        assert pd.read_csv(io.BytesIO(archive.read("profiles.csv")))["f"].tolist() == [1.0, 2.0, 3.0]
        assert archive.read("images/b.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_zip_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="2 images but 1 table rows"):
        images_zip(np.zeros((2, 3, 4, 4), np.uint8), pd.DataFrame({"f": [1]}))
    with pytest.raises(ValueError, match="uint8"):
        images_zip(np.zeros((1, 3, 4, 4), np.float32), pd.DataFrame({"f": [1]}))


def test_safe_names_keep_letters_digits_dots_and_dashes():
    assert safe_name("latrunculin B 3 µM") == "latrunculin_B_3_M"
    assert safe_name("../..") == "cell"


def test_ranked_and_cosine_panels_carry_their_numbers():
    ranked = pd.DataFrame({"feature": ["a", "b"], "pearson_r": [0.8, -0.2]})
    assert panels.ranked_features_panel(ranked, title="t").data.equals(ranked)
    tables = {"A": pd.DataFrame({"step": [0, 1], "cosine": [0.0, 1.0], "replaced_features": ["", "f"]}),
              "B": pd.DataFrame({"step": [0, 1, 2], "cosine": [0.0, 0.5, 1.0], "replaced_features": ["", "f", "g"]})}
    data = panels.cosine_curves_panel(tables).data
    assert data["target_moa"].tolist() == ["A", "A", "B", "B", "B"] and "replaced_features" not in data


class SpeckledDiscModel:
    """DiscModel (conftest) with an even actin stain plus k bright 2 × 2 actin spots in the k-th image of each
    batch: a known puncta count (the even stain leaves no disc edge for the top-hat to find)."""

    def __init__(self, disc_model):
        self.disc = disc_model
        self.feature_names = disc_model.feature_names

    def generate(self, frame, *, batch_size: int = 256) -> np.ndarray:
        images = self.disc.generate(frame, batch_size=batch_size)
        images[:, 2] = 120
        for k in range(len(images)):
            for j in range(k):
                images[k, 2, 28 + 6 * (j % 3):30 + 6 * (j % 3), 28 + 6 * (j // 3):30 + 6 * (j // 3)] = 255
        return images


def test_the_dose_line_counts_actin_puncta_per_step_beside_the_real_end_dose(disc_model, cells):
    from cp2image.analysis.examples import ExampleConfig, dose_line_measured
    from cp2image.channels import CHANNELS

    images = np.zeros((len(cells), 3, 68, 68), np.uint8)
    end_dose = ((cells["Metadata_Compound"] == "latrunculin B") & (cells["Metadata_Concentration"] == 3.0)).to_numpy()
    actin = CHANNELS.index("Actin")
    for y, x in [(10, 10), (10, 30), (30, 10)]:
        images[end_dose, actin, y:y + 2, x:x + 2] = 200  # three puncta in every real 3 µM crop, none elsewhere
    response, puncta = dose_line_measured(SpeckledDiscModel(disc_model), cells, images, config=ExampleConfig(n_steps=4))
    assert puncta["generated_puncta"].tolist() == [0, 1, 2, 3]
    assert (puncta["real_end_dose_puncta"] == 3.0).all()
    assert response.summary()["features_asked"] > 0
    _, without_images = dose_line_measured(SpeckledDiscModel(disc_model), cells, config=ExampleConfig(n_steps=2))
    assert list(without_images.columns) == ["step", "generated_puncta"]

"""Readable feature labels, units and plain numbers (cp2image.analysis.feature_labels)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cp2image.analysis.feature_labels import (
    format_pixels,
    format_value,
    labelled,
    plain_number,
    readable_name,
    scale_note,
    to_physical,
    unit_kind,
    unit_symbol,
)

BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "datasets" / "bbbc021-sim" / "dataset.json"


@pytest.mark.parametrize(("name", "label"), [
    ("Nuclei_AreaShape_Area", "Nucleus area"),
    ("Cells_AreaShape_MajorAxisLength", "Cell major axis length"),
    ("Cytoplasm_AreaShape_Zernike_4_2", "Cytoplasm shape Zernike moment (4, 2)"),
    ("Cells_Intensity_MeanIntensity_Actin", "Cell mean F-actin intensity"),
    ("Nuclei_Intensity_IntegratedIntensity_DNA", "Nucleus total DNA intensity"),
    ("Cells_Intensity_MaxIntensityEdge_Tubulin", "Cell maximum β-tubulin intensity at the edge"),
    ("Cytoplasm_Intensity_MassDisplacement_DNA", "Cytoplasm DNA mass displacement"),
    ("Nuclei_Texture_Contrast_DNA_3_00_256", "Nucleus DNA texture contrast, scale 3 px"),
    ("Cells_Granularity_2_Tubulin", "Cell β-tubulin granularity, scale 2"),
    ("Cells_RadialDistribution_FracAtD_DNA_1of4", "Cell fraction of DNA in ring 1 of 4"),
    ("Nuclei_Correlation_Correlation_DNA_Tubulin", "Nucleus DNA–β-tubulin correlation"),
    ("Cells_Correlation_Manders_Actin_DNA", "Cell Manders' F-actin overlapping DNA"),
])
def test_readable_names_follow_the_cellprofiler_scheme(name, label):
    assert readable_name(name) == label


def test_labelled_puts_the_cellprofiler_name_in_brackets_and_leaves_other_columns_alone():
    assert labelled("Nuclei_AreaShape_Area") == "Nucleus area (Nuclei_AreaShape_Area)"
    assert labelled("median r") == "median r"


def test_unknown_measurements_still_get_their_words_split():
    assert readable_name("Nuclei_Neighbors_NumberOfNeighbors_5") == "Nucleus neighbors number of neighbors 5"


def test_a_name_without_compartment_and_module_is_refused():
    with pytest.raises(ValueError, match="not a CellProfiler feature name"):
        readable_name("Area")


def test_every_bundled_feature_gets_a_distinct_label():
    names = json.loads(BUNDLED.read_text())["features"]
    labels = [readable_name(n) for n in names]
    assert len(set(labels)) == len(names) == 492
    assert not any("_" in label for label in labels)


@pytest.mark.parametrize(("name", "kind"), [
    ("Nuclei_AreaShape_Area", "area"), ("Cells_AreaShape_BoundingBoxArea", "area"),
    ("Cells_AreaShape_Perimeter", "length"), ("Nuclei_AreaShape_MaxFeretDiameter", "length"),
    ("Cells_Intensity_MassDisplacement_Actin", "length"), ("Nuclei_AreaShape_Orientation", "angle"),
    ("Cells_Intensity_MeanIntensity_DNA", "intensity"), ("Cells_Intensity_IntegratedIntensityEdge_DNA", "integrated intensity"),
    ("Cells_Granularity_1_DNA", "percent"), ("Nuclei_AreaShape_FormFactor", "unitless"),
    ("Cells_Texture_Entropy_Actin_3_00_256", "unitless"),
])
def test_unit_kinds(name, kind):
    assert unit_kind(name) == kind


def test_pixel_areas_and_lengths_convert_with_the_pixel_size():
    # 3,290 px² at 0.65 µm/px = 3,290 × 0.4225 = 1,390.0 µm²; 20 px = 13 µm
    assert to_physical("Nuclei_AreaShape_Area", 3290, pixel_size_um=0.65) == pytest.approx(1390.025)
    assert format_value("Nuclei_AreaShape_Area", 3290, pixel_size_um=0.65) == "1,390 µm²"
    assert format_value("Nuclei_AreaShape_MajorAxisLength", 20, pixel_size_um=0.65) == "13 µm"
    assert format_pixels("Nuclei_AreaShape_Area", 3290) == "3,290 px²"
    assert format_pixels("Cells_Intensity_MeanIntensity_DNA", 0.2) == ""


def test_without_a_pixel_size_values_stay_in_pixels():
    assert format_value("Nuclei_AreaShape_Area", 3290, pixel_size_um=None) == "3,290 px²"
    assert unit_symbol("Cells_AreaShape_Perimeter", pixel_size_um=None) == "px"


def test_intensities_angles_and_percentages_keep_their_scale():
    assert format_value("Cells_Intensity_MeanIntensity_DNA", 0.21349, pixel_size_um=0.65) == "0.213"
    assert "0–1" in scale_note("Cells_Intensity_MeanIntensity_DNA")
    assert format_value("Nuclei_AreaShape_Orientation", -45.04, pixel_size_um=0.65) == "−45°"
    assert format_value("Cells_Granularity_3_Actin", 12.34, pixel_size_um=0.65) == "12.3%"


@pytest.mark.parametrize(("value", "text"), [
    (1386.2, "1,390"), (1430.0, "1,430"), (0.000123, "0.000123"), (0.21349, "0.213"), (12.345, "12.3"),
    (99.96, "100"), (-0.5, "−0.5"), (5, "5"), (0, "0"), (1.0e7, "10,000,000"), (float("nan"), "n/a"),
])
def test_plain_numbers_never_use_scientific_notation(value, text):
    assert plain_number(value) == text
    assert "e" not in plain_number(value).replace("n/a", "")


def test_a_bad_pixel_size_is_named():
    with pytest.raises(ValueError, match="pixel_size_um must be a positive number"):
        format_value("Nuclei_AreaShape_Area", 10, pixel_size_um=-1.0)

"""`cp2image ingest fields`: BBBC021 layout (TIFF fields + image/MoA/object CSVs) → dataset.

Every test writes its own miniature screen in exactly the BBBC021 layout: real
16-bit TIFFs via tifffile, real CSVs. Fields are 48×64 pixels, crops 16×16, so the
nucleus centre lands on crop pixel (8, 8).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from cp2image.cli import main
from cp2image.data import open_dataset
from cp2image.data.ingest import FieldIngestConfig, IngestError, crop_windows, ingest_fields
from cp2image.data.intensity import IntensityConfig

H, W, CROP = 48, 64, 16
STAINS = ("DAPI", "Tubulin", "Actin")
MARK = 60000  # DNA value at the first nucleus centre of each field: the field maximum
HALF_MARK = 30000  # DNA value at the other nucleus centres: 255 * 0.5 = 127.5 → 128

# (plate, well, site, compound, concentration, replicate, BBBC021 ImageNumber)
FIELDS = [
    ("Week1_001", "B02", 1, "DMSO", 0.0, 1, 233),
    ("Week1_001", "B03", 1, "taxol", 0.3, 1, 234),
    ("Week1_002", "B02", 2, "mystery", 1.0, 2, 7),
]
# (field row, object number, centre x, centre y, Nuclei_AreaShape_Area, Cells_Intensity_MeanIntensity_Actin)
OBJECTS = [
    (0, 1, 20.0, 20.0, 310.0, 0.25),  # interior
    (0, 2, 3.0, 30.0, 280.0, 0.50),  # x0 = 3 - 8 < 0: border, skipped
    (0, 3, 40.5, 24.4, 295.0, 0.75),  # rounds to (41, 24)
    (1, 1, 32.0, 40.0, 400.0, 0.10),  # window rows 32..47 ends exactly at the edge: kept
    (1, 2, 32.0, 41.0, 410.0, 0.20),  # window rows 33..48 leaves the field: skipped
    (2, 1, 30.0, 20.0, 500.0, 0.30),  # treatment without MoA
    (2, 2, np.nan, np.nan, 505.0, 0.35),  # no centre: skipped
]
KEPT = [(0, 1), (0, 3), (1, 1), (2, 1)]  # (field row, object number), in output order


@dataclass
class Screen:
    root: Path
    image_table: Path
    moa_table: Path
    objects: Path
    raw: list[np.ndarray]  # per field (3, H, W) uint16 in DNA, Tubulin, Actin order


def _write_screen(base: Path, *, image_numbers: bool = True) -> Screen:
    rng = np.random.default_rng(0)
    root = base / "images"
    rows, raw_fields = [], []
    for i, (plate, well, site, compound, conc, rep, number) in enumerate(FIELDS):
        folder = f"Week1/{plate}"
        (root / folder).mkdir(parents=True, exist_ok=True)
        raw = rng.integers(0, 1000, size=(3, H, W), dtype=np.uint16)
        centres = [(o[2], o[3]) for o in OBJECTS if o[0] == i and np.isfinite(o[2])]
        for k, (x, y) in enumerate(centres):
            raw[0, int(np.floor(y + 0.5)), int(np.floor(x + 0.5))] = MARK if k == 0 else HALF_MARK
        raw[1, 0, 0] = 2000  # tubulin max, away from every crop
        row = {"TableNumber": 4, "ImageNumber": number}
        for stain, plane in zip(STAINS, raw):
            name = f"{well}_s{site}_w{STAINS.index(stain) + 1}{stain}.tif"
            tifffile.imwrite(root / folder / name, plane)
            row[f"Image_FileName_{stain}"] = name
            row[f"Image_PathName_{stain}"] = folder
        row.update({
            "Image_Metadata_Plate_DAPI": plate, "Image_Metadata_Well_DAPI": well, "Replicate": rep,
            "Image_Metadata_Compound": compound, "Image_Metadata_Concentration": conc,
        })
        rows.append(row)
        raw_fields.append(raw)
    table = pd.DataFrame(rows)
    if not image_numbers:
        table = table.drop(columns=["TableNumber", "ImageNumber"])
    image_table = base / "BBBC021_v1_image.csv"
    table.to_csv(image_table, index=False)
    moa_table = base / "BBBC021_v1_moa.csv"
    pd.DataFrame({"compound": ["DMSO", "taxol"], "concentration": [0.0, 0.3],
                  "moa": ["DMSO", "Microtubule stabilizers"]}).to_csv(moa_table, index=False)
    objects = base / "Nuclei.csv"
    pd.DataFrame({
        "ImageNumber": [FIELDS[o[0]][6] if image_numbers else o[0] + 1 for o in OBJECTS],
        "ObjectNumber": [o[1] for o in OBJECTS],
        "Nuclei_Location_Center_X": [o[2] for o in OBJECTS],
        "Nuclei_Location_Center_Y": [o[3] for o in OBJECTS],
        "Nuclei_AreaShape_Area": [o[4] for o in OBJECTS],
        "Cells_Intensity_MeanIntensity_Actin": [o[5] for o in OBJECTS],
        "Nuclei_Number_Object_Number": [o[1] for o in OBJECTS],
    }).to_csv(objects, index=False)
    return Screen(root, image_table, moa_table, objects, raw_fields)


@pytest.fixture
def screen(tmp_path: Path) -> Screen:
    return _write_screen(tmp_path)


def _config(**kwargs) -> FieldIngestConfig:
    return FieldIngestConfig(crop_size=CROP, **kwargs)


def _ingest(screen: Screen, out: Path, **kwargs):
    moa = kwargs.pop("moa_table", screen.moa_table)
    return ingest_fields(screen.image_table, screen.objects, out, root=screen.root, moa_table=moa,
                         config=_config(**kwargs))


def _max_normalised(raw: np.ndarray) -> np.ndarray:
    scale = raw.reshape(3, -1).max(axis=1).astype(float)[:, None, None]
    return np.floor(raw / scale * 255 + 0.5).astype(np.uint8)


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if name in p.name)


# ----------------------------------------------------------------------------- happy path


def test_crops_are_centred_on_rounded_nucleus_centres_and_max_normalised_per_field(screen, tmp_path):
    _ingest(screen, tmp_path / "ds")
    ds = open_dataset(tmp_path / "ds")
    assert ds.images.shape == (len(KEPT), 3, CROP, CROP) and ds.images.dtype == np.uint8
    centres = {(0, 1): (20, 20), (0, 3): (41, 24), (1, 1): (32, 40), (2, 1): (30, 20)}
    for i, key in enumerate(KEPT):
        cx, cy = centres[key]
        expected = _max_normalised(screen.raw[key[0]])[:, cy - 8:cy + 8, cx - 8:cx + 8]
        np.testing.assert_array_equal(ds.images[i], expected)
    # the first nucleus of each field holds the field's DNA maximum, at crop pixel (8, 8)
    assert ds.images[0, 0, 8, 8] == 255 and ds.images[2, 0, 8, 8] == 255
    assert ds.images[1, 0, 8, 8] == 128  # 255 * 30000 / 60000 = 127.5 rounds up


def test_border_and_centreless_cells_are_skipped_and_counted(screen, tmp_path):
    summary = _ingest(screen, tmp_path / "ds")
    assert (summary.n_objects, summary.n_written) == (7, 4)
    assert summary.n_skipped_border == 2
    assert summary.n_skipped_no_centre == 1
    assert summary.n_images == 3


def test_metadata_and_features_are_carried_over_by_name(screen, tmp_path):
    _ingest(screen, tmp_path / "ds")
    ds = open_dataset(tmp_path / "ds")
    cells = ds.cells
    by_key = {(o[0], o[1]): o for o in OBJECTS}
    assert cells["Nuclei_AreaShape_Area"].tolist() == [by_key[k][4] for k in KEPT]
    assert cells["Cells_Intensity_MeanIntensity_Actin"].tolist() == [by_key[k][5] for k in KEPT]
    assert ds.feature_names == ["Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin"]
    assert "Nuclei_Location_Center_X" not in cells and "Nuclei_Number_Object_Number" not in cells
    assert cells["Metadata_Center_X"].tolist() == [20.0, 40.5, 32.0, 30.0]
    assert cells["Metadata_Plate"].tolist() == ["Week1_001", "Week1_001", "Week1_001", "Week1_002"]
    assert cells["Metadata_Well"].tolist() == ["B02", "B02", "B03", "B02"]
    assert cells["Metadata_Site"].tolist() == [1.0, 1.0, 1.0, 2.0]
    assert cells["Metadata_Compound"].tolist() == ["DMSO", "DMSO", "taxol", "mystery"]
    assert cells["Metadata_Concentration"].tolist() == [0.0, 0.0, 0.3, 1.0]
    assert cells["Metadata_MoA"].tolist()[:3] == ["DMSO", "DMSO", "Microtubule stabilizers"]
    assert pd.isna(cells["Metadata_MoA"].iloc[3])
    assert cells["Metadata_ObjectNumber"].tolist() == [1, 3, 1, 1]
    assert cells["Metadata_ImageNumber"].tolist() == [233, 233, 234, 7]
    assert ds.meta["provenance"]["join"] == ["ImageNumber"]


def test_split_is_assigned_per_well(screen, tmp_path):
    _ingest(screen, tmp_path / "ds")
    cells = open_dataset(tmp_path / "ds").cells
    assert set(cells["Metadata_Split"]) <= {"train", "val", "test"}
    assert (cells.groupby(["Metadata_Plate", "Metadata_Well"])["Metadata_Split"].nunique() == 1).all()


def test_moa_only_keeps_annotated_treatments(screen, tmp_path):
    summary = _ingest(screen, tmp_path / "ds", moa_only=True)
    cells = open_dataset(tmp_path / "ds").cells
    assert cells["Metadata_Compound"].tolist() == ["DMSO", "DMSO", "taxol"]
    assert summary.n_skipped_moa == 2  # both objects of the "mystery" field


def test_without_image_number_column_objects_join_by_row_order(tmp_path):
    screen = _write_screen(tmp_path, image_numbers=False)
    _ingest(screen, tmp_path / "ds")
    ds = open_dataset(tmp_path / "ds")
    assert ds.cells["Metadata_Compound"].tolist() == ["DMSO", "DMSO", "taxol", "mystery"]
    assert ds.meta["provenance"]["join"] == "row order (1-based)"


def test_unprefixed_spreadsheet_columns_take_the_object_name(screen, tmp_path):
    objects = pd.read_csv(screen.objects)
    objects.columns = [c.removeprefix("Nuclei_") for c in objects.columns]
    objects.to_csv(screen.objects, index=False)  # file is called Nuclei.csv
    _ingest(screen, tmp_path / "ds")
    assert "Nuclei_AreaShape_Area" in open_dataset(tmp_path / "ds").feature_names


def test_percentile_normalisation_with_0_and_100_is_a_min_max_stretch(screen, tmp_path):
    _ingest(screen, tmp_path / "ds", intensity=IntensityConfig("percentile", 0.0, 100.0))
    ds = open_dataset(tmp_path / "ds")
    raw = screen.raw[0].astype(float)
    lo, hi = raw.reshape(3, -1).min(axis=1)[:, None, None], raw.reshape(3, -1).max(axis=1)[:, None, None]
    expected = np.floor((raw - lo) / (hi - lo) * 255 + 0.5).astype(np.uint8)[:, 12:28, 12:28]
    np.testing.assert_array_equal(ds.images[0], expected)
    assert ds.meta["intensity"]["method"] == "percentile"


def test_crop_scope_normalises_each_crop_to_its_own_maximum(screen, tmp_path):
    _ingest(screen, tmp_path / "ds", scope="crop")
    images = open_dataset(tmp_path / "ds").images
    assert (images.reshape(len(images), 3, -1).max(axis=2) == 255).all()


def test_chunked_reading_gives_the_same_dataset(screen, tmp_path):
    _ingest(screen, tmp_path / "a")
    _ingest(screen, tmp_path / "b", chunk_rows=2)
    a, b = open_dataset(tmp_path / "a"), open_dataset(tmp_path / "b")
    np.testing.assert_array_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.cells, b.cells)


def test_crop_windows_round_half_up_and_flag_the_border():
    x0, y0, inside, finite = crop_windows(np.array([8.0, 7.5, 7.49, np.nan]), np.array([8.0, 8.0, 8.0, 8.0]),
                                          height=16, width=16, crop_size=16)
    assert x0.tolist()[:3] == [0, 0, -1]
    assert inside.tolist() == [True, True, False, False]
    assert finite.tolist() == [True, True, True, False]


def test_cli_prints_the_skip_summary(screen, tmp_path, capsys):
    code = main(["ingest", "fields", "--image-table", str(screen.image_table), "--objects", str(screen.objects),
                 "--root", str(screen.root), "--moa-table", str(screen.moa_table), "--out", str(tmp_path / "ds"),
                 "--crop", str(CROP), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "wrote 4 cells" in out
    assert "skipped 2 cells too close to the field border" in out


# ----------------------------------------------------------------------------- bad input


def _assert_fails_cleanly(screen: Screen, tmp_path: Path, *patterns: str) -> None:
    out = tmp_path / "ds"
    with pytest.raises(IngestError) as info:
        _ingest(screen, out)
    for pattern in patterns:
        assert pattern in str(info.value), f"{pattern!r} not in: {info.value}"
    assert not out.exists()
    assert _leftovers(tmp_path, "ds") == []


def test_missing_image_table_column_is_named(screen, tmp_path):
    pd.read_csv(screen.image_table).drop(columns=["Image_FileName_Actin"]).to_csv(screen.image_table, index=False)
    _assert_fails_cleanly(screen, tmp_path, "BBBC021_v1_image.csv", "Image_FileName_Actin")


def test_missing_object_column_is_named(screen, tmp_path):
    pd.read_csv(screen.objects).drop(columns=["Nuclei_Location_Center_Y"]).to_csv(screen.objects, index=False)
    _assert_fails_cleanly(screen, tmp_path, "Nuclei.csv", "Nuclei_Location_Center_Y")


def test_missing_moa_column_is_named(screen, tmp_path):
    pd.read_csv(screen.moa_table).drop(columns=["moa"]).to_csv(screen.moa_table, index=False)
    _assert_fails_cleanly(screen, tmp_path, "BBBC021_v1_moa.csv", "moa")


def test_image_number_without_image_row_is_named(screen, tmp_path):
    objects = pd.read_csv(screen.objects)
    objects.loc[3, "ImageNumber"] = 99
    objects.to_csv(screen.objects, index=False)
    _assert_fails_cleanly(screen, tmp_path, "Nuclei.csv", "ImageNumber", "[99]", "BBBC021_v1_image.csv")


def test_non_numeric_feature_is_named(screen, tmp_path):
    objects = pd.read_csv(screen.objects)
    objects["Nuclei_AreaShape_Area"] = objects["Nuclei_AreaShape_Area"].astype(object)
    objects.loc[2, "Nuclei_AreaShape_Area"] = "big"
    objects.to_csv(screen.objects, index=False)
    _assert_fails_cleanly(screen, tmp_path, "Nuclei.csv", "Nuclei_AreaShape_Area", "'big'")


def _tiff(screen: Screen, row: int, stain: str) -> Path:
    table = pd.read_csv(screen.image_table)
    return screen.root / table.loc[row, f"Image_PathName_{stain}"] / table.loc[row, f"Image_FileName_{stain}"]


def test_missing_tiff_is_named_with_its_column(screen, tmp_path):
    path = _tiff(screen, 1, "Tubulin")
    path.unlink()
    _assert_fails_cleanly(screen, tmp_path, str(path), "Image_FileName_Tubulin")


def test_unreadable_tiff_is_named_with_its_column(screen, tmp_path):
    path = _tiff(screen, 1, "Actin")
    path.write_bytes(b"this is not a TIFF file at all")
    _assert_fails_cleanly(screen, tmp_path, str(path), "Image_FileName_Actin", "unreadable TIFF")


def test_float_tiff_is_rejected_naming_dtype(screen, tmp_path):
    path = _tiff(screen, 2, "DAPI")
    tifffile.imwrite(path, np.zeros((H, W), dtype=np.float32))
    _assert_fails_cleanly(screen, tmp_path, str(path), "Image_FileName_DAPI", "float32")


def test_rgb_tiff_is_rejected_naming_shape(screen, tmp_path):
    path = _tiff(screen, 0, "Tubulin")
    tifffile.imwrite(path, np.zeros((H, W, 3), dtype=np.uint16), photometric="rgb")
    _assert_fails_cleanly(screen, tmp_path, str(path), "Image_FileName_Tubulin", f"({H}, {W}, 3)")


def test_channels_of_different_shape_are_rejected(screen, tmp_path):
    path = _tiff(screen, 1, "Actin")
    tifffile.imwrite(path, np.zeros((H, W + 2), dtype=np.uint16))
    _assert_fails_cleanly(screen, tmp_path, str(path), "Image_FileName_Actin", f"({H}, {W + 2})")


def test_failure_after_some_crops_were_written_leaves_nothing(screen, tmp_path):
    # the last field breaks only once the first two have been cropped and written
    path = _tiff(screen, 2, "Actin")
    path.write_bytes(b"\x00" * 64)
    _assert_fails_cleanly(screen, tmp_path, str(path), "Image_FileName_Actin")


def test_existing_output_is_not_overwritten_without_permission(screen, tmp_path):
    _ingest(screen, tmp_path / "ds")
    with pytest.raises(FileExistsError):
        _ingest(screen, tmp_path / "ds")
    _ingest(screen, tmp_path / "ds", overwrite=True)
    assert len(open_dataset(tmp_path / "ds")) == 4


# ----------------------------------------------------------------------------- options and real tables


def test_measured_features_replace_the_carried_ones(screen, tmp_path):
    from cp2image.features import FAILED_COLUMN, feature_names

    summary = _ingest(screen, tmp_path / "ds", features="measured")
    ds = open_dataset(tmp_path / "ds")
    assert ds.feature_names == feature_names()
    assert "Cells_Intensity_MeanIntensity_Actin" in ds.cells  # now measured, not carried
    assert ds.cells["Cells_Intensity_MeanIntensity_Actin"].tolist() != [0.25, 0.75, 0.10, 0.30]
    assert summary.n_segmentation_failed == int(ds.cells[FAILED_COLUMN].sum())
    assert ds.meta["provenance"]["features"] == "cp2image.features.measure"


@pytest.mark.real_data
def test_official_bbbc021_image_table_joins_on_table_and_image_number(bbbc021_metadata_dir, tmp_path):
    """The real BBBC021_v1_image.csv restarts ImageNumber per TableNumber; objects carry both."""
    table = pd.read_csv(bbbc021_metadata_dir / "BBBC021_v1_image.csv")
    assert table["ImageNumber"].duplicated().any()  # why TableNumber is needed
    picked = table[table["Image_Metadata_Compound"].isin(["latrunculin B", "DMSO"])].groupby(
        "Image_Metadata_Compound").head(1)
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    objects = []
    for _, row in picked.iterrows():
        for stain in STAINS:
            folder = root / row[f"Image_PathName_{stain}"]
            folder.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(folder / row[f"Image_FileName_{stain}"],
                             rng.integers(0, 4000, size=(H, W), dtype=np.uint16))
        objects.append({"TableNumber": row["TableNumber"], "ImageNumber": row["ImageNumber"], "ObjectNumber": 1,
                        "Nuclei_Location_Center_X": 30.0, "Nuclei_Location_Center_Y": 20.0,
                        "Nuclei_AreaShape_Area": 123.0})
    pd.DataFrame(objects).to_csv(tmp_path / "Nuclei.csv", index=False)
    ingest_fields(bbbc021_metadata_dir / "BBBC021_v1_image.csv", tmp_path / "Nuclei.csv", tmp_path / "ds",
                  root=root, moa_table=bbbc021_metadata_dir / "BBBC021_v1_moa.csv", config=_config())
    ds = open_dataset(tmp_path / "ds")
    assert ds.meta["provenance"]["join"] == ["TableNumber", "ImageNumber"]
    assert ds.cells["Metadata_Compound"].tolist() == picked["Image_Metadata_Compound"].tolist()
    assert ds.cells["Metadata_Plate"].tolist() == picked["Image_Metadata_Plate_DAPI"].tolist()
    expected_moa = ["Actin disruptors" if c == "latrunculin B" else "DMSO" for c in picked["Image_Metadata_Compound"]]
    conc = picked["Image_Metadata_Concentration"].tolist()
    annotated = [m if (c != "latrunculin B" or k in (1.0, 3.0)) else None
                 for m, c, k in zip(expected_moa, picked["Image_Metadata_Compound"], conc)]
    assert [m if isinstance(m, str) else None for m in ds.cells["Metadata_MoA"]] == annotated


def test_objects_without_table_number_against_repeating_image_numbers_are_refused(screen, tmp_path):
    table = pd.read_csv(screen.image_table)
    table["ImageNumber"] = [1, 2, 1]
    table["TableNumber"] = [1, 1, 2]
    table.to_csv(screen.image_table, index=False)
    _assert_fails_cleanly(screen, tmp_path, "BBBC021_v1_image.csv", "TableNumber")


def _write_cells_table(screen: Screen, *, drop_object: tuple[int, int] | None = None) -> Path:
    """ExportToSpreadsheet-style Cells.csv (unprefixed columns), cell area = 10 × nucleus area."""
    numbers = [FIELDS[o[0]][6] for o in OBJECTS]
    frame = pd.DataFrame({"ImageNumber": numbers, "ObjectNumber": [o[1] for o in OBJECTS],
                          "AreaShape_Area": [10 * o[4] for o in OBJECTS]})
    if drop_object is not None:
        frame = frame[~((frame.ImageNumber == FIELDS[drop_object[0]][6]) & (frame.ObjectNumber == drop_object[1]))]
    path = screen.objects.with_name("Cells.csv")
    frame.iloc[::-1].to_csv(path, index=False)  # row order must not matter
    return path


def test_related_cells_table_joins_on_image_and_object_number(screen, tmp_path):
    cells_csv = _write_cells_table(screen)
    ingest_fields(screen.image_table, [screen.objects, cells_csv], tmp_path / "ds", root=screen.root,
                  config=_config())
    ds = open_dataset(tmp_path / "ds")
    assert ds.feature_names == ["Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin", "Cells_AreaShape_Area"]
    np.testing.assert_array_equal(ds.cells["Cells_AreaShape_Area"], 10 * ds.cells["Nuclei_AreaShape_Area"])


def test_nucleus_without_related_row_gets_nan_and_is_counted(screen, tmp_path):
    cells_csv = _write_cells_table(screen, drop_object=(0, 3))
    summary = ingest_fields(screen.image_table, [screen.objects, cells_csv], tmp_path / "ds", root=screen.root,
                            config=_config())
    values = open_dataset(tmp_path / "ds").cells["Cells_AreaShape_Area"]
    assert values.isna().tolist() == [False, True, False, False]
    assert summary.n_unmatched_related == 1


def test_feature_given_by_two_tables_is_refused(screen, tmp_path):
    clash = screen.objects.with_name("Cells.csv")
    pd.DataFrame({"ImageNumber": [233], "ObjectNumber": [1], "Intensity_MeanIntensity_Actin": [0.5]}).to_csv(clash, index=False)
    with pytest.raises(IngestError, match="Cells_Intensity_MeanIntensity_Actin"):
        ingest_fields(screen.image_table, [screen.objects, clash], tmp_path / "ds", root=screen.root, config=_config())
    assert not (tmp_path / "ds").exists()


def test_missing_image_root_is_named(screen, tmp_path):
    with pytest.raises(IngestError, match="image root folder not found"):
        ingest_fields(screen.image_table, screen.objects, tmp_path / "ds", root=tmp_path / "nowhere", config=_config())
    assert not (tmp_path / "ds").exists()


def test_objects_out_of_image_order_give_the_same_crops(screen, tmp_path):
    _ingest(screen, tmp_path / "sorted")
    objects = pd.read_csv(screen.objects)
    objects.iloc[[3, 0, 5, 2, 4, 1, 6]].to_csv(screen.objects, index=False)
    _ingest(screen, tmp_path / "shuffled")
    a, b = open_dataset(tmp_path / "sorted"), open_dataset(tmp_path / "shuffled")
    key = ["Metadata_ImageNumber", "Metadata_ObjectNumber"]
    position_in_b = {tuple(k): i for i, k in enumerate(b.cells[key].to_numpy().tolist())}
    order = [position_in_b[tuple(k)] for k in a.cells[key].to_numpy().tolist()]
    np.testing.assert_array_equal(a.images, b.images[order])


def test_cli_reports_bad_input_on_stderr_with_exit_code_2(screen, tmp_path, capsys):
    _tiff(screen, 0, "DAPI").unlink()
    code = main(["ingest", "fields", "--image-table", str(screen.image_table), "--objects", str(screen.objects),
                 "--root", str(screen.root), "--out", str(tmp_path / "ds"), "--crop", str(CROP), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Image_FileName_DAPI" in err and "missing file" in err
    assert not (tmp_path / "ds").exists()


def test_carried_features_normalise_to_dmso_from_the_cell_table(screen, tmp_path):
    """No statistics are stored in dataset.json (nothing read them); the cell table gives them."""
    from cp2image.features import ProfileNormaliser

    _ingest(screen, tmp_path / "ds")
    ds = open_dataset(tmp_path / "ds")
    assert "normalisation" not in ds.meta
    z = ProfileNormaliser().fit(ds.cells).transform(ds.cells)
    # one plate with two DMSO cells (areas 310, 295): median 302.5, MAD 7.5 → z = (x - 302.5) / (1.4826 · 7.5)
    assert z.loc[0, "Nuclei_AreaShape_Area"] == pytest.approx((310 - 302.5) / (1.4826 * 7.5))

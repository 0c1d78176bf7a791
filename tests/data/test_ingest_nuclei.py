"""`cp2image ingest fields` without `--objects`: nuclei found in the fields, cropped, measured.

Synthetic fields (BBBC021 layout, real TIFFs and CSVs) have round nuclei at known
centres, so the centroids, the border rule and the file rules are checked against
numbers written in the test. The real BBBC021 fields (`real_fields_dir`, skipped when
../shared is absent) check the nucleus count against a count made by eye.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from cp2image.cli import main
from cp2image.data import open_dataset
from cp2image.data.ingest import (FieldIngestConfig, IngestError, crop_field, find_nuclei,
                                  ingest_fields_finding_nuclei, read_field, read_image_table)
from cp2image.data.intensity import IntensityConfig
from cp2image.features import FAILED_COLUMN, feature_names

H, W, CROP, RADIUS = 120, 160, 40, 7.0
# nucleus centres (x, y) per field; (12, 60) and (150, 100) lie closer to the edge than CROP / 2
CENTRES = {
    0: [(40.0, 40.0), (90.3, 45.6), (60.0, 85.0), (12.0, 60.0)],
    1: [(50.0, 50.0), (110.0, 70.0), (150.0, 100.0)],
}
STAINS = ("DAPI", "Tubulin", "Actin")


def _field(centres: list[tuple[float, float]], rng: np.random.Generator) -> np.ndarray:
    """(3, H, W) uint16: flat-topped round nuclei in DNA, a dimmer halo of cytoplasm in tubulin/actin."""
    yy, xx = np.mgrid[:H, :W]
    raw = np.zeros((3, H, W))
    for x, y in centres:
        r = np.hypot(xx - x, yy - y)
        raw[0] += 20000 * (r <= RADIUS)
        raw[1] += 6000 * (r <= 2.2 * RADIUS)
        raw[2] += 5000 * ((r > 1.4 * RADIUS) & (r <= 2.2 * RADIUS))
    raw += rng.integers(300, 500, size=raw.shape)
    return raw.astype(np.uint16)


def _write(base: Path, *, drop: tuple[int, str] | None = None, absent_rows: int = 2) -> tuple[Path, Path, list]:
    """Two complete fields (+ `absent_rows` listed but never written); `drop` deletes one channel file."""
    rng = np.random.default_rng(0)
    root = base / "images"
    folder = root / "Week1" / "Week1_001"
    folder.mkdir(parents=True)
    rows, raws = [], []
    for i in range(2 + absent_rows):
        row = {"TableNumber": 1, "ImageNumber": 100 + i}
        for k, stain in enumerate(STAINS):
            row[f"Image_FileName_{stain}"] = f"B02_s{i + 1}_w{k + 1}.tif"
            row[f"Image_PathName_{stain}"] = "Week1/Week1_001"
        row.update({"Image_Metadata_Plate_DAPI": "Week1_001", "Image_Metadata_Well_DAPI": "B02", "Replicate": 1,
                    "Image_Metadata_Compound": "DMSO", "Image_Metadata_Concentration": 0.0})
        rows.append(row)
        if i in CENTRES:
            raw = _field(CENTRES[i], rng)
            raws.append(raw)
            for k, stain in enumerate(STAINS):
                if drop != (i, stain):
                    tifffile.imwrite(folder / row[f"Image_FileName_{stain}"], raw[k])
    table = base / "BBBC021_v1_image.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table, root, raws


def _config(**kwargs) -> FieldIngestConfig:
    return FieldIngestConfig(crop_size=CROP, **kwargs)


def test_nuclei_are_found_at_their_centroids(tmp_path):
    _, _, raws = _write(tmp_path)
    for i, raw in enumerate(raws):
        nuclei = find_nuclei(raw)
        found = sorted(zip(np.round(nuclei.x, 1), np.round(nuclei.y, 1)))
        expected = sorted(CENTRES[i])
        assert len(found) == len(expected)
        np.testing.assert_allclose(np.array(found), np.array(expected), atol=0.5)
        # a disc of radius 7 px has ~154 px; smoothing and Otsu move its edge by at most a pixel
        assert np.all(np.abs(nuclei.area - np.pi * RADIUS**2) < 2 * np.pi * RADIUS)


def test_crops_are_centred_on_nuclei_and_border_cells_are_skipped(tmp_path):
    _, _, raws = _write(tmp_path)
    raw = raws[0]
    nuclei = find_nuclei(raw)
    crops, inside = crop_field(raw, nuclei, crop_size=CROP, intensity=IntensityConfig())
    kept = {(round(x), round(y)) for x, y in zip(nuclei.x[inside], nuclei.y[inside])}
    assert kept == {(40, 40), (90, 46), (60, 85)}  # (12, 60): its 40-px window would start at x = -8
    assert crops.shape == (3, 3, CROP, CROP) and crops.dtype == np.uint8
    # every crop's centre pixel is inside its nucleus, which holds the field's DNA maximum
    assert (crops[:, 0, CROP // 2, CROP // 2] > 200).all()


def test_fields_without_objects_become_a_measured_dataset(tmp_path):
    table, root, _ = _write(tmp_path)
    summary = ingest_fields_finding_nuclei(table, tmp_path / "ds", root=root, config=_config())
    ds = open_dataset(tmp_path / "ds")
    assert summary.n_images == 2 and summary.n_objects == 7
    assert summary.n_skipped_border == 2 and summary.n_written == len(ds) == 5
    assert summary.n_fields_absent == 2  # listed in the image table, never downloaded
    assert ds.feature_names == feature_names()
    assert not ds.cells[FAILED_COLUMN].any()
    cells = ds.cells
    assert cells["Metadata_ImageNumber"].tolist() == [100, 100, 100, 101, 101]
    assert cells["Metadata_Site"].tolist() == [1.0, 1.0, 1.0, 2.0, 2.0]
    centres = sorted(zip(cells["Metadata_Center_X"].round(), cells["Metadata_Center_Y"].round()))
    assert centres == sorted([(40, 40), (90, 46), (60, 85), (50, 50), (110, 70)])
    assert ds.meta["provenance"]["source"] == "fields-nuclei-found"
    # measured nucleus area ≈ the disc's area (crop segmentation agrees with the field's)
    assert cells["Nuclei_AreaShape_Area"].between(0.8 * np.pi * RADIUS**2, 1.25 * np.pi * RADIUS**2).all()


def test_a_missing_channel_file_is_named_and_the_complete_fields_are_ingested(tmp_path):
    table, root, _ = _write(tmp_path, drop=(1, "Actin"))
    summary = ingest_fields_finding_nuclei(table, tmp_path / "ds", root=root, config=_config())
    missing = str(root / "Week1" / "Week1_001" / "B02_s2_w3.tif")
    assert summary.missing_files == [missing]
    assert any(missing in line for line in summary.lines())
    assert summary.n_images == 1 and len(open_dataset(tmp_path / "ds")) == 3
    assert open_dataset(tmp_path / "ds").meta["provenance"]["missing_files"] == [missing]


def test_strict_makes_a_missing_channel_file_an_error(tmp_path):
    table, root, _ = _write(tmp_path, drop=(1, "Actin"))
    with pytest.raises(IngestError, match=r"data row 2 is incomplete: missing .*B02_s2_w3.tif \(Image_FileName_Actin\)"):
        ingest_fields_finding_nuclei(table, tmp_path / "ds", root=root, config=_config(strict=True))
    assert not (tmp_path / "ds").exists()


def test_no_complete_field_is_an_error(tmp_path):
    table, root, _ = _write(tmp_path)
    for f in root.rglob("*_w1.tif"):
        f.unlink()
    with pytest.raises(IngestError, match="none of its 4 fields has all three channel files"):
        ingest_fields_finding_nuclei(table, tmp_path / "ds", root=root, config=_config())


def test_cli_ingests_fields_without_objects(tmp_path, capsys):
    table, root, _ = _write(tmp_path, drop=(1, "Actin"))
    code = main(["ingest", "fields", "--image-table", str(table), "--root", str(root), "--crop", str(CROP),
                 "--out", str(tmp_path / "ds"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "wrote 3 cells" in out and "B02_s2_w3.tif is missing" in out
    code = main(["ingest", "fields", "--image-table", str(table), "--root", str(root), "--crop", str(CROP),
                 "--out", str(tmp_path / "strict"), "--no-progress", "--strict"])
    assert code != 0 and "B02_s2_w3.tif (Image_FileName_Actin)" in capsys.readouterr().err


# ----------------------------------------------------------------------------- real BBBC021 fields

# Nuclei in site s1 (Week2_24381 B02 s1, 1024 × 1280) counted by eye on the DNA image, in
# six tiles of 427 × 512 px at 2× zoom (see docs/real-bbbc021.md): 28 + 23 + 39 (top row),
# 49 + 30 + 28 (bottom row) = 197, counting nuclei cut by the field edge and both chromatin
# masses of an anaphase as two; 6 more faint or sliver-sized objects were uncertain.
S1_BY_EYE = 197


@pytest.mark.real_data
def test_real_field_s1_nuclei_agree_with_a_count_by_eye(real_fields_dir, bbbc021_metadata_dir):
    image_table = bbbc021_metadata_dir / "BBBC021_v1_image.csv"
    table = read_image_table(image_table)
    row = int(np.flatnonzero(table["Image_FileName_DAPI"].str.contains("_B02_s1_")
                             & (table["Image_Metadata_Plate_DAPI"] == "Week2_24381"))[0])
    nuclei = find_nuclei(read_field(table, row, root=real_fields_dir, image_path=image_table))
    assert abs(len(nuclei) - S1_BY_EYE) <= 0.1 * S1_BY_EYE, len(nuclei)
    # MCF-7 nuclei at 0.65 µm/px: a few hundred to ~1,500 px
    assert 500 < np.median(nuclei.area) < 1500


@pytest.mark.real_data
def test_real_fields_ingest_the_complete_sites_and_name_the_missing_actin_file(
        real_fields_dir, bbbc021_metadata_dir, tmp_path):
    meta = bbbc021_metadata_dir
    summary = ingest_fields_finding_nuclei(meta / "BBBC021_v1_image.csv", tmp_path / "ds", root=real_fields_dir,
                                           moa_table=meta / "BBBC021_v1_moa.csv", config=FieldIngestConfig())
    ds = open_dataset(tmp_path / "ds")
    assert summary.n_images == 2  # s1 and s2; s3 lacks its actin (w4) file
    assert len(summary.missing_files) == 1 and "_B02_s3_w4" in summary.missing_files[0]
    assert sorted(set(ds.cells["Metadata_Site"])) == [1.0, 2.0]
    assert set(ds.cells["Metadata_MoA"]) == {"DMSO"}
    assert len(ds) == summary.n_written > 250  # ~350 nuclei in s1 + s2, minus those near the border
    assert ds.cells[FAILED_COLUMN].mean() < 0.05
    with pytest.raises(IngestError, match=r"_B02_s3_w4.*\(Image_FileName_Actin\)"):
        ingest_fields_finding_nuclei(meta / "BBBC021_v1_image.csv", tmp_path / "strict", root=real_fields_dir,
                                     config=FieldIngestConfig(strict=True))

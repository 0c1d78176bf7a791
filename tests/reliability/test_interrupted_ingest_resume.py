"""Every `cp2image ingest` path, killed with SIGKILL part-way, resumes when the same command
runs again and ends with the dataset an uninterrupted run writes (same images,
cells.parquet bytes and dataset.json) and the same printed summary:

- `ingest fields` without --objects (the official BBBC021 layout), one unit per field;
- `ingest fields --objects`, one unit per chunk of the objects table;
- `ingest crops`, one unit per batch of crops.

The whole process group (CLI + LocalCluster) is killed once the journal records at
least two units (`reliability_helpers.killed_run_resumes_identically`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from reliability_helpers import killed_run_resumes_identically

H, W, N_FIELDS, CROP = 120, 160, 12, 40
CENTRES = [(40, 40), (95, 45), (60, 85), (115, 80)]


def _fields(base: Path) -> tuple[Path, Path, Path]:
    """Twelve synthetic 16-bit fields with 2–4 round cells each, their image table and a Nuclei.csv."""
    rng = np.random.default_rng(0)
    root = base / "images"
    folder = root / "Week1" / "Week1_001"
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[:H, :W]
    rows, objects = [], []
    for i in range(N_FIELDS):
        raw = np.zeros((3, H, W))
        for k, (x, y) in enumerate(CENTRES[: 2 + i % 3]):
            r = np.hypot(xx - x - i % 4, yy - y)
            raw[0] += 20000 * (r <= 7)
            raw[1] += 6000 * (r <= 15)
            raw[2] += 5000 * ((r > 10) & (r <= 15))
            objects.append({"ImageNumber": i + 1, "ObjectNumber": k + 1, "Nuclei_Location_Center_X": x + i % 4,
                            "Nuclei_Location_Center_Y": y, "Nuclei_AreaShape_Area": 154.0 + i})
        raw = (raw + rng.integers(300, 500, size=raw.shape)).astype(np.uint16)
        row = {"TableNumber": 1, "ImageNumber": i + 1, "Image_Metadata_Plate_DAPI": "Week1_001",
               "Image_Metadata_Well_DAPI": f"B{i // 4 + 2:02d}", "Replicate": 1,
               "Image_Metadata_Compound": "DMSO" if i < 4 else "taxol",
               "Image_Metadata_Concentration": 0.0 if i < 4 else 1.0}
        for k, stain in enumerate(("DAPI", "Tubulin", "Actin")):
            row[f"Image_FileName_{stain}"] = f"F{i:02d}_s1_w{k + 1}.tif"
            row[f"Image_PathName_{stain}"] = "Week1/Week1_001"
            tifffile.imwrite(folder / row[f"Image_FileName_{stain}"], raw[k])
        rows.append(row)
    pd.DataFrame(rows).to_csv(base / "image.csv", index=False)
    pd.DataFrame(objects).to_csv(base / "Nuclei.csv", index=False)
    return base / "image.csv", root, base / "Nuclei.csv"


def _crops(path: Path, n: int = 96, size: int = 48) -> Path:
    """An .npz of n raw 16-bit crops (a nucleus, a cell around it) on three plates, with metadata."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    radius = rng.uniform(5, 9, n)
    images = np.stack([np.stack([20000 * (r <= k), 6000 * (r <= 1.8 * k), 5000 * ((r > k) & (r <= 1.8 * k))], -1)
                       for k in radius]) + rng.integers(300, 500, size=(n, size, size, 3))
    plates = np.array([f"P{i % 3}" for i in range(n)])
    np.savez(path, images=images.astype(np.uint16), plate=plates, well=np.array([f"B0{i % 2 + 2}" for i in range(n)]),
             compound=np.where(np.arange(n) % 4 == 0, "DMSO", "taxol"),
             concentration=np.where(np.arange(n) % 4 == 0, 0.0, 1.0))
    return path


@pytest.mark.slow
def test_a_killed_ingest_of_fields_without_objects_resumes_identically(tmp_path):
    table, root, _ = _fields(tmp_path)
    straight, resumed = killed_run_resumes_identically(
        lambda out: ["ingest", "fields", "--image-table", str(table), "--root", str(root), "--crop", str(CROP),
                     "--out", str(out), "--n-jobs", "1", "--no-progress"],
        tmp_path, units=N_FIELDS, unit_name="fields")
    assert resumed == straight  # the summary covers the whole dataset, not only the resumed part


@pytest.mark.slow
def test_a_killed_ingest_of_fields_with_an_objects_table_resumes_identically(tmp_path):
    table, root, nuclei = _fields(tmp_path)
    straight, resumed = killed_run_resumes_identically(
        lambda out: ["ingest", "fields", "--image-table", str(table), "--objects", str(nuclei), "--root", str(root),
                     "--crop", str(CROP), "--features", "measured", "--chunk-rows", "3", "--out", str(out),
                     "--n-jobs", "1", "--no-progress"],
        tmp_path, units=12, unit_name="chunks of the objects table")  # 36 objects, 3 per chunk
    assert resumed == straight


@pytest.mark.slow
def test_a_killed_ingest_of_crops_resumes_identically(tmp_path):
    npz = _crops(tmp_path / "crops.npz")
    straight, resumed = killed_run_resumes_identically(
        lambda out: ["ingest", "crops", "--npz", str(npz), "--batch-size", "12", "--out", str(out),
                     "--n-jobs", "1", "--no-progress"],
        tmp_path, units=8, unit_name="batches")
    assert resumed == straight

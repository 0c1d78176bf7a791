"""`cp2image ingest` on a real dask LocalCluster of two worker processes gives the dataset
an in-process ingest gives: per-field tasks (find nuclei; crop + measure) for raw fields,
per-batch measurement tasks for ready-made crops; `--scheduler ADDRESS` reaches them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from cp2image.cli import main
from cp2image.data import open_dataset
from cp2image.data.ingest import CropIngestConfig, FieldIngestConfig, ingest_crops, ingest_fields_finding_nuclei, npz_source
from cp2image.distributed import ClusterConfig, dask_client

H, W, CROP = 120, 160, 40
CENTRES = [[(40, 40), (90, 45), (60, 85)], [(50, 50), (110, 70)], [(45, 60), (100, 60), (80, 90)]]
STAINS = ("DAPI", "Tubulin", "Actin")


@pytest.fixture(scope="module")
def client():
    with dask_client(ClusterConfig(n_workers=2)) as c:
        yield c


def _fields(base: Path) -> tuple[Path, Path]:
    """Three BBBC021-layout fields (16-bit TIFFs + image table) with round nuclei and a cytoplasm halo."""
    rng = np.random.default_rng(0)
    root = base / "images"
    (root / "Week1" / "Week1_001").mkdir(parents=True)
    yy, xx = np.mgrid[:H, :W]
    rows = []
    for i, centres in enumerate(CENTRES):
        raw = np.zeros((3, H, W))
        for x, y in centres:
            r = np.hypot(xx - x, yy - y)
            raw[0] += 20000 * (r <= 7)
            raw[1] += 6000 * (r <= 15)
            raw[2] += 5000 * ((r > 10) & (r <= 15))
        raw = (raw + rng.integers(300, 500, size=raw.shape)).astype(np.uint16)
        row = {"TableNumber": 1, "ImageNumber": i + 1, "Image_Metadata_Plate_DAPI": "Week1_001",
               "Image_Metadata_Well_DAPI": ["B02", "B02", "C03"][i], "Replicate": 1,
               "Image_Metadata_Compound": ["DMSO", "DMSO", "taxol"][i], "Image_Metadata_Concentration": [0, 0, 1.0][i]}
        for k, stain in enumerate(STAINS):
            row[f"Image_FileName_{stain}"] = f"B0{i}_s{i + 1}_w{k + 1}.tif"
            row[f"Image_PathName_{stain}"] = "Week1/Week1_001"
            tifffile.imwrite(root / "Week1" / "Week1_001" / row[f"Image_FileName_{stain}"], raw[k])
        rows.append(row)
    table = base / "image.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table, root


def _same(a: Path, b: Path) -> None:
    x, y = open_dataset(a), open_dataset(b)
    np.testing.assert_array_equal(np.asarray(x.images), np.asarray(y.images))
    pd.testing.assert_frame_equal(x.cells, y.cells)
    assert {k: v for k, v in x.meta.items() if k not in ("provenance", "checksums")} == {k: v for k, v in y.meta.items() if k not in ("provenance", "checksums")}


def test_fields_found_cropped_and_measured_as_tasks_equal_the_in_process_ingest(client, tmp_path):
    table, root = _fields(tmp_path)
    config = FieldIngestConfig(crop_size=CROP)
    here = ingest_fields_finding_nuclei(table, tmp_path / "here", root=root, config=config)
    there = ingest_fields_finding_nuclei(table, tmp_path / "there", root=root, config=config, client=client)
    assert there.n_written == here.n_written == 8
    _same(tmp_path / "there", tmp_path / "here")


def test_ingest_fields_command_runs_on_an_existing_scheduler(client, tmp_path, capsys):
    table, root = _fields(tmp_path)
    ingest_fields_finding_nuclei(table, tmp_path / "here", root=root, config=FieldIngestConfig(crop_size=CROP))
    assert main(["ingest", "fields", "--image-table", str(table), "--root", str(root), "--crop", str(CROP),
                 "--out", str(tmp_path / "cli"), "--scheduler", client.scheduler.address, "--no-progress"]) == 0
    _same(tmp_path / "cli", tmp_path / "here")


def test_crops_measured_as_tasks_equal_the_in_process_ingest(client, tmp_path):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:CROP, :CROP] - (CROP - 1) / 2
    r = np.hypot(yy, xx)
    crops = np.stack([np.stack([20000 * (r <= rng.uniform(5, 8)), 6000 * (r <= 15), 5000 * ((r > 10) & (r <= 15))],
                               axis=-1) + rng.integers(300, 500, (CROP, CROP, 3)) for _ in range(30)]).astype(np.uint16)
    npz = tmp_path / "crops.npz"
    np.savez(npz, images=crops, plate=np.array(["P1"] * 30), well=np.array(["B02", "C03"] * 15),
             compound=np.array(["DMSO", "taxol"] * 15), concentration=np.array([0.0, 1.0] * 15))
    config = CropIngestConfig(batch_size=12)  # three batches
    ingest_crops(npz_source(npz), tmp_path / "here", config=config)
    ingest_crops(npz_source(npz), tmp_path / "there", config=config, client=client)
    _same(tmp_path / "there", tmp_path / "here")

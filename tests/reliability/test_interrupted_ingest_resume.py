"""A `cp2image ingest fields` (no --objects: the official BBBC021 layout) killed with SIGKILL
part-way resumes when the same command runs again, and ends with the dataset an
uninterrupted run writes: the same images, cells.parquet bytes and dataset.json.

Twelve synthetic 16-bit fields; the whole process group (CLI + LocalCluster) is killed
once the journal records at least two fields."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from cp2image.data import open_dataset

REPO = Path(__file__).resolve().parents[2]
H, W, N_FIELDS = 120, 160, 12


def _fields(base: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    root = base / "images"
    folder = root / "Week1" / "Week1_001"
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[:H, :W]
    rows = []
    for i in range(N_FIELDS):
        raw = np.zeros((3, H, W))
        for x, y in [(40, 40), (95, 45), (60, 85), (115, 80)][: 2 + i % 3]:
            r = np.hypot(xx - x - i % 4, yy - y)
            raw[0] += 20000 * (r <= 7)
            raw[1] += 6000 * (r <= 15)
            raw[2] += 5000 * ((r > 10) & (r <= 15))
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
    table = base / "image.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table, root


def _ingest(table: Path, root: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "cp2image", "ingest", "fields", "--image-table", str(table), "--root", str(root),
           "--crop", "40", "--out", str(out), "--n-jobs", "1", "--no-progress"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    return err


@pytest.mark.slow
def test_a_killed_ingest_resumes_and_ends_identical_to_an_uninterrupted_one(tmp_path):
    table, root = _fields(tmp_path)
    _finish(_ingest(table, root, tmp_path / "straight"))

    target = tmp_path / "killed"
    journal = tmp_path / ".killed.partial" / "journal.jsonl"
    proc = _ingest(table, root, target)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the ingest finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not target.exists()
    recorded = len(journal.read_text().splitlines())
    assert 2 <= recorded < N_FIELDS

    err = _finish(_ingest(table, root, target))
    assert f"{recorded} of {N_FIELDS} fields already written" in err

    resumed, straight = open_dataset(target), open_dataset(tmp_path / "straight")
    np.testing.assert_array_equal(np.asarray(resumed.images), np.asarray(straight.images))
    pd.testing.assert_frame_equal(resumed.cells, straight.cells)
    assert (target / "cells.parquet").read_bytes() == (tmp_path / "straight" / "cells.parquet").read_bytes()
    assert json.loads((target / "dataset.json").read_text()) == json.loads((tmp_path / "straight" / "dataset.json").read_text())
    assert resumed.meta["normalisation"] is not None

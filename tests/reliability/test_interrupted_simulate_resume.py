"""A `cp2image simulate` killed with SIGKILL part-way resumes when the same command runs
again, and ends with exactly the dataset of an uninterrupted run: the same images, the
same cells.parquet bytes and the same dataset.json (normalisation included).

The command runs as a subprocess with its dask LocalCluster (one worker); the kill goes
to the whole process group, as an out-of-memory kill or a cancelled batch job would.
It lands once the journal records at least two of the nine wells, so the resumed run
has work to skip and work to do.
"""
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

from cp2image.data import open_dataset

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--cells", "36", "--seed", "4", "--replicates", "1", "--compounds", "taxol", "--jobs", "1", "--no-progress"]


def _simulate(out: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "cp2image", "simulate", str(out), *ARGS], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    return err


@pytest.mark.slow
def test_a_killed_simulation_resumes_and_ends_identical_to_an_uninterrupted_one(tmp_path):
    _finish(_simulate(tmp_path / "straight"))

    target = tmp_path / "killed"
    journal = tmp_path / ".killed.partial" / "journal.jsonl"
    proc = _simulate(target)
    deadline = time.monotonic() + 600
    recorded = 0
    while proc.poll() is None and time.monotonic() < deadline:
        recorded = len(journal.read_text().splitlines()) if journal.exists() else 0
        if recorded >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not target.exists()
    recorded = len(journal.read_text().splitlines())
    assert 2 <= recorded < 9

    err = _finish(_simulate(target))
    assert f"{recorded} of 9 wells already written" in err

    resumed, straight = open_dataset(target), open_dataset(tmp_path / "straight")
    np.testing.assert_array_equal(np.asarray(resumed.images), np.asarray(straight.images))
    pd.testing.assert_frame_equal(resumed.cells, straight.cells)
    assert (target / "cells.parquet").read_bytes() == (tmp_path / "straight" / "cells.parquet").read_bytes()
    assert json.loads((target / "dataset.json").read_text()) == json.loads((tmp_path / "straight" / "dataset.json").read_text())
    assert resumed.meta["normalisation"] is not None
    assert not journal.parent.exists()

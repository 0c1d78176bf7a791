"""Tiny seeded data, hypothesis settings and the kill-and-resume check shared by the reliability tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings

from cp2image.data import open_dataset

# Property tests here write files; keep them short and deterministic in CI.
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def tiny_cells(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Metadata_Plate": ["P1"] * n,
            "Metadata_Well": [f"B{i % 3 + 2:02d}" for i in range(n)],
            "Metadata_Compound": ["DMSO"] * n,
            "Metadata_Concentration": [0.0] * n,
            "Nuclei_AreaShape_Area": np.arange(n, dtype=float) + 100.0,
            "Cells_Intensity_MeanIntensity_Actin": np.linspace(0.0, 1.0, n),
        }
    )


def tiny_images(n: int, size: int = 68, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, size, size), dtype=np.uint8)


# ----------------------------------------------------------------------------- kill and resume

REPO = Path(__file__).resolve().parents[2]


def start_cli(args: list[str]) -> subprocess.Popen:
    """`python -m cp2image ARGS` in a process group of its own, so that a kill also takes its dask workers."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "cp2image", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    """Wait for a command; it must succeed. Returns (stdout, stderr)."""
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out + err
    return out, err


def kill_when_journaled(proc: subprocess.Popen, journal: Path, *, at_least: int = 2, timeout: float = 600) -> int:
    """SIGKILL the command's whole process group (as an out-of-memory kill or a cancelled batch job
    would) once `journal` records `at_least` units; returns how many units it recorded."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= at_least:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the command finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return len(journal.read_text().splitlines())


def assert_same_dataset(a: Path, b: Path) -> None:
    """Identical images, identical cells.parquet bytes (so identical rows and types) and dataset.json."""
    x, y = open_dataset(a), open_dataset(b)
    np.testing.assert_array_equal(np.asarray(x.images), np.asarray(y.images))
    pd.testing.assert_frame_equal(x.cells, y.cells, check_exact=True)  # a failure names the column
    assert (a / "cells.parquet").read_bytes() == (b / "cells.parquet").read_bytes()
    assert json.loads((a / "dataset.json").read_text()) == json.loads((b / "dataset.json").read_text())


def killed_run_resumes_identically(command: Callable[[Path], list[str]], tmp_path: Path, *, units: int,
                                   unit_name: str) -> tuple[str, str]:
    """The resume contract of a streaming command, checked end to end.

    Runs `command(out)` once straight through; then again into another folder,
    SIGKILLs it once at least two of its `units` are journaled, and runs the same
    command again. The second run must announce how many `unit_name` it found
    written, and end with exactly the straight run's dataset and no leftover work
    folder. Returns (stdout of the straight run, stdout of the resumed run), with
    the output paths replaced by OUT, for summary checks.
    """
    straight, target = tmp_path / "straight", tmp_path / "killed"
    journal = tmp_path / ".killed.partial" / "journal.jsonl"
    straight_out, _ = finish(start_cli(command(straight)))
    recorded = kill_when_journaled(start_cli(command(target)), journal)
    assert not target.exists()
    assert 2 <= recorded < units, recorded
    resumed_out, err = finish(start_cli(command(target)))
    assert f"{recorded} of {units} {unit_name} already written" in err, err
    assert_same_dataset(target, straight)
    assert not journal.parent.exists()
    return straight_out.replace(str(straight), "OUT"), resumed_out.replace(str(target), "OUT")

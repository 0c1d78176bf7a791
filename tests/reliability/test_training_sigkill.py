"""A training run killed with SIGKILL at random moments — including in the middle of a
checkpoint write — resumes from its last good checkpoint and ends with exactly the
weights of an uninterrupted run.

Both runs go through the real command line (`python -m cp2image train ... --resume`) in
subprocesses with one torch thread, so the float summation order is identical.
Checkpoints are written every step here so that most kills land inside a write.
"""
from __future__ import annotations

import csv
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
import torch
from reliability_helpers import tiny_images
from safetensors.torch import load_file

from cp2image.data import write_dataset
from cp2image.training.checkpoint import load_checkpoint

STEPS = 40
# Kills alternate: inside a checkpoint write, then at a random moment of the loop. Two of each
# prove both contracts; each kill costs a fresh process (Python + torch import + set-up), so
# more kills only repeat the same check (8 kills made it the 2nd-slowest test: 195 s of 1937 s at load ≈ 10).
KILLS = 4
CONFIG = dict(
    steps=STEPS, batch_size=8, base_filters=8, kernel_size=3, gamma=[0.1] * 5,
    gamma_delay=[0, 2, 4, 6, 8], gamma_ramp=[4] * 5, log_every=2, grid_every=12,
    checkpoint_every=1, grid_cells=4, progress=False, seed=0,
)


@pytest.fixture(scope="module")
def run_setup(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sigkill")
    n = 40
    rng = np.random.default_rng(0)
    cells = pd.DataFrame({
        "Metadata_Plate": "P1", "Metadata_Well": [f"B{i % 4 + 2:02d}" for i in range(n)],
        "Metadata_Compound": "DMSO", "Metadata_Concentration": 0.0, "Metadata_Split": "train",
        "Nuclei_AreaShape_Area": rng.uniform(100, 400, n),
        "Cells_Intensity_MeanIntensity_Actin": rng.uniform(0, 1, n),
    })
    data = write_dataset(root / "data", tiny_images(n, size=32), cells)
    config = root / "config.json"
    config.write_text(json.dumps(CONFIG))
    return data, config


def _command(data: Path, config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "cp2image", "train", "--data", str(data), "--out", str(out),
            "--config", str(config), "--threads", "1", "--resume", "--no-progress"]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def _state(run: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run / "checkpoint.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith(("net.", "optim."))}


def _metric_steps(run: Path) -> list[int]:
    with open(run / "metrics.csv") as fh:
        return [int(row["step"]) for row in csv.DictReader(fh)]


def _start(data: Path, config: Path, out: Path) -> subprocess.Popen:
    """Launch the CLI and return once its training loop has begun."""
    proc = subprocess.Popen(_command(data, config, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=_env(), cwd=Path(__file__).resolve().parents[2])
    for line in proc.stderr:  # wait until the trainer is past imports and set-up
        if "training cp2image on" in line or "exporting only" in line:
            break
    return proc


def _loop_seconds(proc: subprocess.Popen) -> float:
    """Seconds from the start of the training loop to the model export."""
    t0 = time.perf_counter()
    for line in proc.stderr:
        if "exported" in line:
            break
    seconds = time.perf_counter() - t0
    proc.stderr.read()
    assert proc.wait(timeout=600) == 0
    return seconds


def _kill_inside_checkpoint_write(proc: subprocess.Popen, run: Path, timeout: float) -> bool:
    """SIGKILL as soon as a checkpoint temp file exists (i.e. while it is being written)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and proc.poll() is None:
        if any(run.glob(".checkpoint.safetensors.*.tmp")):
            os.kill(proc.pid, signal.SIGKILL)
            return True
        time.sleep(0.0005)
    return False


@pytest.mark.slow
def test_sigkilled_training_resumes_to_the_uninterrupted_weights(run_setup, tmp_path):
    data, config = run_setup
    reference = tmp_path / "reference"
    loop_seconds = _loop_seconds(_start(data, config, reference))  # uninterrupted run

    rng = np.random.default_rng(2024)
    run = tmp_path / "killed"
    kills, mid_write, steps_seen = 0, 0, []
    while True:
        proc = _start(data, config, run)
        if kills >= KILLS:
            proc.stderr.read()
            assert proc.wait(timeout=600) == 0
            break
        if kills % 2 == 0:  # inside a checkpoint write
            if not _kill_inside_checkpoint_write(proc, run, timeout=2 * loop_seconds):
                proc.stderr.read()
                assert proc.wait(timeout=600) == 0
                break
        else:  # at a random moment of the loop
            time.sleep(float(rng.uniform(0.0, 0.5)) * loop_seconds)
            if proc.poll() is not None:
                assert proc.returncode == 0
                break
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        kills += 1
        leftovers = list(run.glob(".checkpoint.safetensors.*.tmp"))
        mid_write += bool(leftovers)
        for partial in leftovers:
            partial.unlink()  # a half-written temp file is never read by resume; clean it like a user would
        ckpt = run / "checkpoint.safetensors"
        if ckpt.exists():
            _, state = load_checkpoint(ckpt)  # the last good checkpoint is always readable
            steps_seen.append(int(state["step"]))

    assert kills >= 3, f"only {kills} kill(s) landed before training finished"
    assert mid_write >= 1, "no kill landed inside a checkpoint write"
    assert steps_seen == sorted(steps_seen), steps_seen  # progress is never lost or rewound
    a, b = _weights(reference), _weights(run)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"exported weight {key} differs after resume"
    ref_state, run_state = _state(reference), _state(run)
    assert ref_state.keys() == run_state.keys()
    for key in ref_state:
        assert torch.equal(ref_state[key], run_state[key]), f"checkpoint tensor {key} differs"
    assert _metric_steps(run) == _metric_steps(reference)  # no step logged twice
    print(f"kills={kills} mid_checkpoint_write={mid_write} checkpoint_steps={steps_seen}")

"""A simulation interrupted at any moment leaves no dataset that opens as valid unless it
is complete: every image, every row (features, ground truth) and its whole dataset.json."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cp2image.data import DatasetError, open_dataset

SMALL = dict(n_cells=24, seed=3, replicates=1, dmso_wells_per_plate=1, compounds=("taxol",))

CHILD = """
import sys
from cp2image.data.simulate.pipeline import SimulationConfig, simulate_screen
from cp2image.data.simulate.screen import ScreenConfig
print("ready", flush=True)
simulate_screen(sys.argv[1], SimulationConfig(screen=ScreenConfig(**{small!r})), overwrite=True)
print("done", flush=True)
"""


def _config():
    from cp2image.data.simulate.pipeline import SimulationConfig
    from cp2image.data.simulate.screen import ScreenConfig

    return SimulationConfig(screen=ScreenConfig(**SMALL))


def _valid_entries(parent: Path) -> list:
    opened = []
    for entry in sorted(parent.iterdir()) if parent.exists() else []:
        try:
            opened.append(open_dataset(entry))
        except DatasetError:
            pass
    return opened


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from cp2image.data.simulate.pipeline import simulate_screen

    return open_dataset(simulate_screen(tmp_path_factory.mktemp("ref") / "ds", _config()))


def test_reference_simulation_is_complete(reference):
    assert len(reference) == SMALL["n_cells"]


def test_crash_while_the_dataset_is_being_finished_leaves_no_dataset(tmp_path, monkeypatch):
    from cp2image.data.simulate.pipeline import simulate_screen
    from cp2image.data.writer import DatasetWriter

    def crash(self, *args, **kwargs):
        raise RuntimeError("simulated crash while merging the cell table")

    monkeypatch.setattr(DatasetWriter, "_merge_parts", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        simulate_screen(tmp_path / "ds", _config())
    assert _valid_entries(tmp_path) == []


@pytest.mark.slow
def test_sigkilled_simulation_never_leaves_an_incomplete_valid_dataset(tmp_path, reference):
    rng = np.random.default_rng(5)
    code = CHILD.format(small=SMALL)
    outcomes = []
    for trial in range(4):  # two kills the moment the target appears, two at random moments
        parent = tmp_path / f"t{trial}"
        parent.mkdir()
        target = parent / "ds"
        proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        if trial % 2 == 0:  # the moment the target directory appears
            deadline = time.perf_counter() + 120
            while not target.exists() and proc.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.0005)
        else:  # trial 1 early in the run (so one kill surely lands before the end at any load), trial 3 anywhere
            time.sleep(float(rng.uniform(0.0, 0.2 if trial == 1 else 3.0)))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        valid = _valid_entries(parent)
        for ds in valid:
            same = {k: v for k, v in ds.meta.items() if k != "checksums"} == {
                k: v for k, v in reference.meta.items() if k != "checksums"}
            assert same, f"{ds.path.name} opens with other metadata"
            assert ds.cells.equals(reference.cells), f"{ds.path.name} opens with different cells"
            np.testing.assert_array_equal(np.asarray(ds.images), np.asarray(reference.images))
        outcomes.append(len(valid))
    assert 0 in outcomes, outcomes  # at least one kill landed before the dataset was complete

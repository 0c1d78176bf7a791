"""`cp2image simulate` on the command line."""
from __future__ import annotations

import numpy as np

from cp2image.cli import main
from cp2image.data.dataset import open_dataset


def test_simulate_command_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "sim"
    args = ["simulate", str(out), "--cells", "24", "--seed", "2", "--replicates", "1",
            "--compounds", "latrunculin B", "--no-features", "--no-progress"]
    assert main(args) == 0
    ds = open_dataset(out)
    assert ds.images.shape == (24, 3, 68, 68)
    assert set(ds.cells["Metadata_Compound"]) == {"DMSO", "latrunculin B"}
    assert "simulated 24 cells" in capsys.readouterr().out
    # same seed, same images
    assert main(args[:1] + [str(tmp_path / "again")] + args[2:]) == 0
    np.testing.assert_array_equal(np.asarray(open_dataset(tmp_path / "again").images), np.asarray(ds.images))


def test_simulate_command_reports_bad_input(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "x"), "--cells", "0"]) == 2
    assert "n_cells must be >= 1" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "y"), "--cells", "5", "--compounds", "aspirin"]) == 2
    assert "unknown screen compound" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "z"), "--cells", "5", "--jobs", "0"]) == 2
    assert "--jobs must be" in capsys.readouterr().err

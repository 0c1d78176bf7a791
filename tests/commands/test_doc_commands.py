"""The documentation figures and the simulation checks are `cp2image` subcommands (no `python -m module`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from cp2image.assets import bundled_dataset_dir
from cp2image.cli import main
from cp2image.data.dataset import write_dataset


def test_figures_simulated_writes_the_example_crops_of_the_bundled_slice(tmp_path, capsys):
    out = tmp_path / "figures" / "simulated-examples.png"
    assert main(["figures", "simulated", str(bundled_dataset_dir()), str(out), "--per-row", "2"]) == 0
    with Image.open(out) as picture:
        width, height = picture.size
    assert height > width  # 17 rows (DMSO, 12 MoAs, 4 latrunculin B doses) of 2 crops: a tall figure
    assert f"wrote {out}" in capsys.readouterr().out


def test_sim_check_on_a_dataset_without_ground_truth_names_the_missing_column(tmp_path, capsys):
    cells = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": "A01", "Metadata_Compound": "DMSO",
                          "Metadata_Concentration": 0.0, "Nuclei_AreaShape_Area": [10.0, 12.0]})
    data = write_dataset(tmp_path / "real", np.zeros((2, 3, 8, 8), np.uint8), cells)
    assert main(["sim-check", str(data)]) == 2
    assert "needs column(s) ['Truth_NucleusArea']" in capsys.readouterr().err


def test_figures_compare_shows_one_held_out_cell_per_moa_above_its_generated_image(tmp_path, capsys):
    from cp2image.assets import bundled_model_dir
    from cp2image.data.dataset import open_dataset

    out = tmp_path / "compare.png"
    assert main(["figures", "compare", str(bundled_model_dir()), str(bundled_dataset_dir()), str(out),
                 "--split", "test"]) == 0
    cells = open_dataset(bundled_dataset_dir()).cells
    n_moas = cells.loc[cells["Metadata_Split"] == "test", "Metadata_MoA"].nunique()
    assert f"wrote {out} ({n_moas} cells)" in capsys.readouterr().out
    with Image.open(out) as picture:
        width, height = picture.size
    assert width > 3 * height  # one column per MoA, two rows

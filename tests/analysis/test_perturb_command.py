"""`cp2image perturb` end to end with a tiny saved model and a tiny dataset."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.analysis.coupling import COUPLING_FILE, load_coupling
from cp2image.cli import main
from cp2image.data.dataset import write_dataset
from cp2image.models.testing import tiny_model

NAMES = ["Nuclei_AreaShape_Area", "Nuclei_AreaShape_Perimeter", "Cells_AreaShape_Area",
         "Cells_Intensity_MeanIntensity_Actin"]


@pytest.fixture
def setup(tmp_path):
    """30 cells (DMSO + taxol, train/test), area and perimeter correlated; a tiny model normalised on them."""
    rng = np.random.default_rng(0)
    n = 30
    area = 300 + 40 * rng.standard_normal(n)
    cells = pd.DataFrame({
        "Nuclei_AreaShape_Area": area,
        "Nuclei_AreaShape_Perimeter": 2 * np.sqrt(np.pi * area) + rng.standard_normal(n),
        "Cells_AreaShape_Area": 1200 + 150 * rng.standard_normal(n),
        "Cells_Intensity_MeanIntensity_Actin": 0.3 + 0.03 * rng.standard_normal(n),
        "Metadata_Plate": "P1", "Metadata_Well": [f"W{i % 4}" for i in range(n)],
        "Metadata_Compound": ["DMSO"] * 20 + ["taxol"] * 10,
        "Metadata_Concentration": [0.0] * 20 + [1.0] * 10,
        "Metadata_Split": ["train", "test"] * 15,
    })
    images = rng.integers(0, 255, size=(n, 3, 68, 68), dtype=np.uint8)
    data = write_dataset(tmp_path / "data", images, cells, {"features": NAMES})
    model = tmp_path / "model"
    tiny_model(NAMES, seed=3, feature_mean=cells[NAMES].mean().tolist(),
               feature_scale=cells[NAMES].std().tolist()).save_pretrained(model)
    return model, data, tmp_path


def test_fit_coupling_then_a_coupled_sweep_writes_images_csvs_and_panel(setup, capsys):
    model, data, tmp = setup
    assert main(["perturb", "--fit-coupling", "--model", str(model), "--data", str(data)]) == 0
    assert "fitted on 15 cells" in capsys.readouterr().out  # the train split only
    coupling = load_coupling(model)
    assert coupling.n_cells == 15 and (model / COUPLING_FILE).is_file()
    assert main(["perturb", "--fit-coupling", "--model", str(model), "--data", str(data), "--split", "any"]) == 0
    assert load_coupling(model).n_cells == 30  # an explicit split is used as given
    assert main(["perturb", "--fit-coupling", "--model", str(model), "--data", str(data)]) == 0
    capsys.readouterr()

    out = tmp / "out"
    code = main(["perturb", "--model", str(model), "--data", str(data), "--feature", "nuclei_areashape_area",
                 "--n-cells", "2", "--steps", "5", "--no-measure", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "coupled (with its correlated features), 2 cell(s), 5 steps" in printed
    assert "Nuclei_AreaShape_Perimeter" in printed  # the partner that moves most is named
    sweep = pd.read_csv(out / "sweep.csv")
    assert len(sweep) == 10 and set(sweep["mode"]) == {"coupled"} and set(sweep["cell"]) == {1, 3}  # first test DMSO
    moved = pd.read_csv(out / "moved_with.csv")
    assert moved.loc[moved["cell"] == 1, "feature"].iloc[0] == "Nuclei_AreaShape_Perimeter"
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["cell"]) == [1, 3]
    assert sorted(p.name for p in out.glob("cell1_step*.png")) == [f"cell1_step{k}.png" for k in range(5)]
    assert (out / "panel.png").stat().st_size > 0 and (out / "panel.svg").stat().st_size > 0


def test_coupled_without_a_coupling_file_says_how_to_get_one(setup, capsys):
    model, data, tmp = setup
    code = main(["perturb", "--model", str(model), "--data", str(data), "--feature", "Cells_AreaShape_Area",
                 "--no-measure", "--out", str(tmp / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "has no feature_coupling.safetensors" in err and "--fit-coupling" in err and "--mode single" in err
    assert main(["perturb", "--model", str(model), "--data", str(data), "--feature", "Cells_AreaShape_Area",
                 "--no-measure", "--mode", "single", "--cell", "5", "--out", str(tmp / "single")]) == 0
    assert pd.read_csv(tmp / "single" / "sweep.csv")["cell"].unique().tolist() == [5]
    assert not (tmp / "single" / "moved_with.csv").exists()


def test_unknown_cell_and_empty_selection_are_named(setup, capsys):
    model, data, tmp = setup
    base = ["perturb", "--model", str(model), "--data", str(data), "--feature", "Cells_AreaShape_Area",
            "--mode", "single", "--no-measure"]
    assert main([*base, "--cell", "999", "--out", str(tmp / "a")]) == 2
    assert "no cell with row label '999'" in capsys.readouterr().err
    assert main([*base, "--compound", "nocodazole", "--out", str(tmp / "b")]) == 2
    assert "no cells of compound 'nocodazole'" in capsys.readouterr().err

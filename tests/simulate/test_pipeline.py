"""End to end: render → crop → measure → dataset, deterministic for a seed."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cp2image.data.columns import feature_columns
from cp2image.data.dataset import open_dataset
from cp2image.data.simulate.pipeline import SimulationConfig, simulate_screen, truth_column
from cp2image.data.simulate.screen import ScreenConfig

TINY = ScreenConfig(n_cells=60, seed=11, replicates=2, compounds=("latrunculin B",))


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "tiny"
    simulate_screen(path, SimulationConfig(screen=TINY))
    return open_dataset(path)


def test_dataset_has_metadata_features_and_truth(tiny_dataset):
    ds = tiny_dataset
    assert ds.images.shape == (60, 3, 68, 68) and ds.images.dtype == np.uint8
    cells = ds.cells
    for col in ("Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
                "Metadata_MoA", "Metadata_Split", "Metadata_Center_X", "Metadata_Center_Y", "Metadata_ObjectNumber"):
        assert col in cells.columns, col
    assert set(cells["Metadata_Compound"]) == {"DMSO", "latrunculin B"}
    assert (cells.loc[cells["Metadata_Compound"] == "DMSO", "Metadata_Concentration"] == 0.0).all()
    assert (cells.loc[cells["Metadata_Compound"] == "DMSO", "Metadata_MoA"] == "DMSO").all()
    assert set(cells["Metadata_Split"]) <= {"train", "val", "test"}
    assert cells.groupby(["Metadata_Plate", "Metadata_Well"])["Metadata_Split"].nunique().max() == 1
    assert "Nuclei_AreaShape_Area" in feature_columns(cells)
    assert ds.feature_names == feature_columns(cells)
    assert not cells[feature_columns(cells)].isna().any().any()  # failed segmentations are replaced
    assert {"Truth_NucleusArea", "Truth_CellRadius", "Truth_ActinPuncta", "Truth_Mitotic"} <= set(cells.columns)
    assert json.loads((ds.path / "dataset.json").read_text())["provenance"]["seed"] == 11


def test_features_are_measured_not_copied(tiny_dataset):
    cells = tiny_dataset.cells
    measured, truth = cells["Nuclei_AreaShape_Area"], cells["Truth_NucleusArea"]
    assert not np.allclose(measured, truth)  # measured on pixels, so never identical
    assert measured.corr(truth, method="spearman") > 0.8


def test_crops_match_their_recorded_centres(tiny_dataset):
    """The crop's centre pixel holds a nucleus: DNA in the middle of every crop is brighter
    than its median pixel (nuclei cover well under half of a crop, so the median is cytoplasm
    or background; a corner may hold a neighbour's nucleus since cells have real MCF-7 sizes)."""
    dna = tiny_dataset.images[:, 0].astype(float)  # (N, H, W)
    centre = dna[:, 30:38, 30:38].mean(axis=(1, 2))
    assert (centre > np.median(dna.reshape(len(dna), -1), axis=1)).all()


def test_same_seed_same_dataset_with_any_number_of_jobs(tiny_dataset, tmp_path):
    again = open_dataset(simulate_screen(tmp_path / "again", SimulationConfig(screen=TINY), jobs=2))
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(tiny_dataset.images))
    pd.testing.assert_frame_equal(again.cells, tiny_dataset.cells)


def test_packed_dataset_opens_with_the_same_images(tiny_dataset, tmp_path):
    config = SimulationConfig(screen=TINY)
    path = simulate_screen(tmp_path / "packed", config, packed=True)
    assert (path / "images.npz").exists() and not (path / "images.npy").exists()
    np.testing.assert_array_equal(np.asarray(open_dataset(path).images), np.asarray(tiny_dataset.images))
    assert not any(p.name.startswith(".packed") for p in tmp_path.iterdir())  # no leftovers


def test_refuses_to_overwrite_without_permission(tiny_dataset):
    with pytest.raises(FileExistsError, match="overwrite"):
        simulate_screen(tiny_dataset.path, SimulationConfig(screen=TINY))


def test_truth_column_names():
    assert truth_column("cell_radius") == "Truth_CellRadius"
    assert truth_column("actin_puncta") == "Truth_ActinPuncta"


def test_cells_of_a_well_are_spread_over_sites(tiny_dataset):
    """3 cells per well and ≥ 4 sites per well: every cell comes from its own field of view."""
    per_well = tiny_dataset.cells.groupby(["Metadata_Plate", "Metadata_Well"])
    assert (per_well["Metadata_Site"].nunique() == per_well.size()).all()

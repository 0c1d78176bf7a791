"""`cp2image features DATASET` measures a dataset in place and records what it did."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cp2image.cli import main
from cp2image.data.dataset import open_dataset, write_dataset
from cp2image.features import FAILED_COLUMN, ProfileNormaliser, feature_names


@pytest.fixture
def dataset(tmp_path, crop_batch):
    images = crop_batch.copy()
    images[6] = 0  # one empty crop
    cells = pd.DataFrame(
        {
            "Metadata_Plate": ["P1"] * 4 + ["P2"] * 4,
            "Metadata_Well": ["B02", "B02", "C03", "C03"] * 2,
            "Metadata_Compound": ["DMSO", "DMSO", "taxol", "taxol"] * 2,
            "Metadata_Concentration": [0.0, 0.0, 1.0, 1.0] * 2,
            "Nuclei_AreaShape_Area": np.arange(8.0),  # a stale feature from CellProfiler
        }
    )
    return write_dataset(tmp_path / "ds", images, cells)


def test_command_writes_features_and_flag_and_no_profile_normalisation(dataset, capsys):
    """Nothing reads a stored normalisation (training and analysis use the model's statistics);
    one left by an older version describes the replaced features, so it goes."""
    from cp2image.data.dataset import update_meta

    update_meta(dataset, normalisation={"features": ["Nuclei_AreaShape_Area"]})  # as an older version wrote
    assert main(["features", str(dataset), "--jobs", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "7/8 crops (87.5%)" in out
    assert f"measured {len(feature_names())} features" in out
    ds = open_dataset(dataset)
    assert ds.feature_names == feature_names()
    assert ds.cells[FAILED_COLUMN].tolist() == [False] * 6 + [True, False]
    assert ds.cells.loc[0, "Nuclei_AreaShape_Area"] != 0.0  # stale value replaced
    assert list(ds.cells["Metadata_Compound"]) == ["DMSO", "DMSO", "taxol", "taxol"] * 2
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["feature_measurement"]["segmentation_success_rate"] == pytest.approx(7 / 8)
    assert "normalisation" not in meta


def test_the_table_gives_the_dmso_normalisation_when_wanted(dataset):
    assert main(["features", str(dataset), "--jobs", "1", "--no-progress"]) == 0
    cells = open_dataset(dataset).cells
    z = ProfileNormaliser().fit(cells[~cells[FAILED_COLUMN]]).transform(cells)
    dmso_p1 = z[(z.Metadata_Plate == "P1") & (z.Metadata_Compound == "DMSO")]
    # two DMSO cells per plate: the median sits halfway, so they are ±1/1.4826 MAD-units apart
    assert np.allclose(dmso_p1["Nuclei_AreaShape_Area"].abs(), 1 / 1.4826)


def test_command_reports_a_missing_dataset(tmp_path, capsys):
    assert main(["features", str(tmp_path / "nope"), "--no-progress"]) == 2
    assert "error" in capsys.readouterr().out

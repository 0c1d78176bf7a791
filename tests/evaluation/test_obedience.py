"""evaluation.obedience: the ablation scorer scores only the held-out splits it is given."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cp2image.assets import bundled_dataset_dir
from cp2image.data.dataset import open_dataset
from cp2image.evaluation.obedience import evaluate_obedience, heldout_and_training
from cp2image.models.testing import tiny_model


@pytest.fixture(scope="module")
def screen():
    """60 cells of the bundled screen (20 per split, DMSO first), with a non-positional index on purpose."""
    ds = open_dataset(bundled_dataset_dir())
    split = ds.cells["Metadata_Split"].astype(str).to_numpy()
    dmso = (ds.cells["Metadata_Compound"].astype(str) == "DMSO").to_numpy()
    rows = np.concatenate([np.flatnonzero((split == s) & dmso)[:10].tolist() + np.flatnonzero((split == s) & ~dmso)[:10].tolist()
                           for s in ("train", "val", "test")])
    cells = ds.cells.iloc[rows].copy()
    cells.index = pd.RangeIndex(500, 500 + len(cells))
    return SimpleNamespace(cells=cells, images=np.asarray(ds.images[rows]), path="bundled subset"), list(ds.feature_names)


@pytest.fixture(scope="module")
def model(screen):
    cells, names = screen[0].cells, screen[1]
    train = cells.loc[cells["Metadata_Split"] == "train", names]
    return tiny_model(names, seed=0, feature_mean=train.mean().tolist(), feature_scale=(train.std() + 1e-6).tolist())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_only_the_named_held_out_splits_are_scored(model, screen):
    data, names = screen
    report = evaluate_obedience(model, data, n_control_cells=2, control_features=("Nuclei_AreaShape_Area",),
                                held_out=("val",))
    val = (data.cells["Metadata_Split"] == "val").to_numpy()
    assert report.n_heldout == int(val.sum()) == 20
    assert set(report.correlation["feature"]) == set(names)
    assert set(report.control["mode"]) == {"coupled", "single"}
    # the pixel MSE compares each val cell's image with its own crop (positions, not index labels)
    generated = model.generate(data.cells.loc[val]).astype(np.float32) / 255
    originals = data.images[val].astype(np.float32) / 255
    assert report.pixel_mse == pytest.approx(float(np.mean((generated - originals) ** 2)), rel=1e-5)


def test_the_default_held_out_cells_are_val_and_test(screen):
    data, names = screen
    held, train = heldout_and_training(data.cells, names)
    assert set(held["Metadata_Split"]) == {"val", "test"} and set(train["Metadata_Split"]) == {"train"}


@pytest.mark.parametrize("splits, problem", [(("dev",), "not in the dataset"), (("train",), "is the training split")])
def test_a_split_that_is_absent_or_the_training_one_is_refused(screen, splits, problem):
    data, names = screen
    with pytest.raises(ValueError, match=problem):
        heldout_and_training(data.cells, names, splits)

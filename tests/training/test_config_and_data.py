"""Training config parsing, step sampler and the memory-mapped batch dataset."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cp2image.data.dataset import DatasetError, open_dataset
from cp2image.training.config import TrainConfig
from cp2image.training.data import (CellBatches, PairedSampler, StepSampler, images_file, prepare_features,
                                    training_rows, write_feature_matrix)

from training_fixtures import FEATURES


def test_defaults_follow_the_original_work():
    c = TrainConfig()
    assert (c.batch_size, c.lr, c.base_filters, c.kernel_size) == (104, 1e-3, 32, 5)
    assert len(c.gamma) == len(c.gamma_delay) == len(c.gamma_ramp) == 5


def test_config_file_is_read_and_flags_win(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('steps = 7\nbatch_size = 16\ngamma = [0.1, 0.1, 0.1, 0.1, 0.1]\n')
    c = TrainConfig.from_file(toml, steps=9)
    assert (c.steps, c.batch_size, c.gamma[0]) == (9, 16, 0.1)
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"model": "vae", "lr": 5e-4}))
    assert TrainConfig.from_file(js).model == "vae"


def test_unknown_option_and_inconsistent_gamma_are_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['stepz'\]"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="one entry per discriminator layer"):
        TrainConfig(gamma=[1.0], gamma_delay=[0, 0], gamma_ramp=[0])
    with pytest.raises(ValueError, match="model must be one of"):
        TrainConfig(model="gan")


def test_rank_shards_together_are_the_single_process_batch():
    single = StepSampler(50, global_batch=8, start_step=0, end_step=20, seed=3)
    ranks = [StepSampler(50, global_batch=8, start_step=0, end_step=20, seed=3, rank=r, world_size=2)
             for r in range(2)]
    for step in range(20):
        shards = [s.indices(step) for s in ranks]
        assert len(shards[0]) == len(shards[1]) == 4
        np.testing.assert_array_equal(np.sort(np.concatenate(shards)), single.indices(step))


def test_sampler_started_mid_run_continues_the_same_sequence():
    full = list(StepSampler(30, global_batch=4, start_step=0, end_step=12, seed=1))
    tail = list(StepSampler(30, global_batch=4, start_step=5, end_step=12, seed=1))
    for a, b in zip(full[5:], tail):
        np.testing.assert_array_equal(a, b)


def test_epoch_visits_each_cell_at_most_once_and_streams_differ():
    s = StepSampler(20, global_batch=5, start_step=0, end_step=4, seed=0)
    seen = np.concatenate(list(s))
    assert len(np.unique(seen)) == 20
    other = StepSampler(20, global_batch=5, start_step=0, end_step=4, seed=0, stream=1)
    assert any(not np.array_equal(a, b) for a, b in zip(s, other))


def test_batch_larger_than_data_is_an_error():
    with pytest.raises(DatasetError, match="fewer than the batch size 16"):
        StepSampler(10, global_batch=16, start_step=0, end_step=1, seed=0)


def test_features_standardised_on_training_rows_and_bad_rows_dropped(blob_data, tmp_path):
    ds = open_dataset(blob_data)
    rows = training_rows(ds, "train")
    assert len(rows) == 40
    table = prepare_features(ds, rows)
    assert table.names == FEATURES
    np.testing.assert_allclose(table.standardised.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(table.standardised.std(axis=0), 1, atol=1e-4)
    raw = ds.cells[FEATURES].iloc[rows].to_numpy()
    np.testing.assert_allclose(table.mean, raw.mean(axis=0))


def test_requested_missing_feature_is_named(blob_data):
    ds = open_dataset(blob_data)
    with pytest.raises(DatasetError, match="Cells_Nope"):
        prepare_features(ds, np.arange(10), features=["Cells_Nope"])


def test_batches_dataset_never_pickles_its_memmap_and_workers_agree(blob_data, tmp_path):
    ds = open_dataset(blob_data)
    rows = training_rows(ds, "train")
    table = prepare_features(ds, rows)
    feats = write_feature_matrix(tmp_path / "f.npy", table.standardised)
    batches = CellBatches(images_file(ds), table.rows, feats)
    first = batches[(np.array([0, 3]), np.array([1, 2]))]
    assert first["images"].dtype == torch.uint8 and first["images"].shape == (2, 3, 32, 32)
    assert pickle.loads(pickle.dumps(batches))._images is None
    np.testing.assert_array_equal(first["images"].numpy(), ds.images[table.rows[[0, 3]]])

    def sampler():
        return PairedSampler(StepSampler(40, global_batch=8, start_step=0, end_step=4, seed=0),
                             StepSampler(40, global_batch=8, start_step=0, end_step=4, seed=0, stream=1))
    serial = [b["images"] for b in DataLoader(batches, sampler=sampler(), batch_size=None)]
    parallel = [b["images"] for b in DataLoader(batches, sampler=sampler(), batch_size=None, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))

"""Class-balanced sampling (`balance_by`): rare MoAs are drawn as often as DMSO; the default is unchanged."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cp2image.data.dataset import DatasetError
from cp2image.training.checkpoint import load_checkpoint
from cp2image.training.config import TrainConfig
from cp2image.training.data import StepSampler, balancing_labels, class_weights
from cp2image.training.trainer import Trainer

from test_trainer import tiny_config
from training_fixtures import blob_dataset

# 90 % DMSO, like the real crops: 60 DMSO, 9 of one MoA, 1 of another
LABELS = np.array(["DMSO"] * 60 + ["Eg5 inhibitors"] * 9 + ["Actin disruptors"] * 1)


def class_shares(sampler: StepSampler, steps: int) -> pd.Series:
    drawn = np.concatenate([sampler.indices(t) for t in range(steps)])
    return pd.Series(LABELS[drawn]).value_counts(normalize=True)


def test_balanced_sampler_draws_every_class_equally_often():
    weights = class_weights(LABELS, power=1.0)
    sampler = StepSampler(len(LABELS), global_batch=30, start_step=0, end_step=2000, seed=0, weights=weights)
    shares = class_shares(sampler, 2000)
    assert set(shares.index) == set(LABELS)
    np.testing.assert_allclose(shares.to_numpy(), 1 / 3, atol=0.01)  # 60 000 draws: SD of a share ≈ 0.002


def test_power_half_gives_shares_proportional_to_the_square_root_of_the_count():
    weights = class_weights(LABELS, power=0.5)
    expected = np.sqrt([60, 9, 1]) / np.sqrt([60, 9, 1]).sum()
    got = pd.Series(weights).groupby(LABELS).sum()[["DMSO", "Eg5 inhibitors", "Actin disruptors"]]
    np.testing.assert_allclose(got.to_numpy(), expected)
    np.testing.assert_allclose(class_weights(LABELS, power=0.0), 1 / len(LABELS))  # power 0: uniform


def test_missing_labels_form_their_own_class_and_negative_power_is_refused():
    weights = class_weights(np.array(["A", "A", "A", None], dtype=object))
    np.testing.assert_allclose(weights, [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    with pytest.raises(ValueError, match="≥ 0"):
        class_weights(LABELS, power=-1)
    with pytest.raises(ValueError, match="balance_power"):
        TrainConfig(balance_power=-0.5)


def test_balanced_batches_are_a_function_of_the_step_so_resume_and_ranks_agree():
    weights = class_weights(LABELS)
    full = StepSampler(70, global_batch=8, start_step=0, end_step=12, seed=1, weights=weights)
    tail = StepSampler(70, global_batch=8, start_step=5, end_step=12, seed=1, weights=weights)
    for a, b in zip(list(full)[5:], tail):
        np.testing.assert_array_equal(a, b)
    ranks = [StepSampler(70, global_batch=8, start_step=0, end_step=12, seed=1, rank=r, world_size=2,
                         weights=weights) for r in range(2)]
    for step in range(12):
        both = np.sort(np.concatenate([s.indices(step) for s in ranks]))
        np.testing.assert_array_equal(both, full.indices(step))
    other_stream = StepSampler(70, global_batch=8, start_step=0, end_step=12, seed=1, stream=1, weights=weights)
    assert not np.array_equal(other_stream.indices(0), full.indices(0))


def test_default_is_unchanged_uniform_epochs():
    assert TrainConfig().balance_by is None and TrainConfig().keep_checkpoints is False
    sampler = StepSampler(20, global_batch=5, start_step=0, end_step=4, seed=0)
    # the pre-existing definition: epoch permutation seeded by (seed, stream, epoch), cut into batches
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0)).numpy()
    for step in range(4):
        np.testing.assert_array_equal(sampler.indices(step), np.sort(perm[5 * step:5 * step + 5]))


def test_balance_by_names_moa_compound_or_any_column():
    cells = pd.DataFrame({"Metadata_MoA": ["a", "b", "c"], "Metadata_Compound": ["x", "y", "z"],
                          "Metadata_Plate": ["p", "p", "q"]})
    rows = np.array([2, 0])
    assert balancing_labels(cells, rows, "moa").tolist() == ["c", "a"]
    assert balancing_labels(cells, rows, "compound").tolist() == ["z", "x"]
    assert balancing_labels(cells, rows, "Metadata_Plate").tolist() == ["q", "p"]
    with pytest.raises(DatasetError, match="no column 'Metadata_Batch'"):
        balancing_labels(cells, rows, "Metadata_Batch")


def test_trainer_balances_by_moa_and_keeps_every_checkpoint(tmp_path):
    moa = ["DMSO"] * 30 + ["Eg5 inhibitors"] * 9 + ["Actin disruptors"] + ["DMSO"] * 8  # 40 train rows, then test
    data = blob_dataset(tmp_path / "ds", n=48, moa=moa)
    trainer = Trainer(tiny_config(steps=6, checkpoint_every=2, balance_by="moa", keep_checkpoints=True),
                      data, tmp_path / "run")
    result = trainer.run()
    assert result.steps == 6
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert kept == ["step_0000002.safetensors", "step_0000004.safetensors", "step_0000006.safetensors"]
    _, state = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_0000004.safetensors")
    assert state["step"] == 4 and state["config"]["balance_by"] == "moa"
    with pytest.raises(DatasetError, match="no column"):
        Trainer(tiny_config(steps=2, balance_by="Metadata_Nothing"), data, tmp_path / "bad").run()

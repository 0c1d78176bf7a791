"""Fixtures for trainer tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from training_fixtures import blob_dataset


@pytest.fixture(scope="session")
def blob_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blob_dataset(tmp_path_factory.mktemp("blobs") / "ds")


@pytest.fixture(scope="session")
def blob_regressor(blob_data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small critic of the blob features (40 steps), for consistency and generated-view tests."""
    import torch

    from cp2image.training.regressor import RegressorTrainConfig, train_regressor

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("critic") / "regressor"
    train_regressor(blob_data, out, RegressorTrainConfig(steps=40, batch_size=16, heldout_split="test",
                                                         widths=[4, 8], progress=False))
    return out


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP spin-waiting makes 2 threads ~5× slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""Fixtures for trainer tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from training_fixtures import blob_dataset


@pytest.fixture(scope="session")
def blob_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return blob_dataset(tmp_path_factory.mktemp("blobs") / "ds")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP spin-waiting makes 2 threads ~5× slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""Fixtures for the bad-input and fault tests."""
from __future__ import annotations

from pathlib import Path

import pytest
from reliability_helpers import tiny_cells, tiny_images


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """A valid 6-cell dataset written by the project's own writer."""
    from cp2image.data import write_dataset

    return write_dataset(tmp_path / "ds", tiny_images(6), tiny_cells(6))

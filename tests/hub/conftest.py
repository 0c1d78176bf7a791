"""Hub tests: a private HF_HOME per test, offline unless a test says otherwise."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def hf_home(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face home; cp2image reads HF_HOME at call time, so no re-import is needed."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home

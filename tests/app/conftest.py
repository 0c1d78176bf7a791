"""App test fixtures: a tiny assets folder (dataset + untrained model + evaluation) and AppTest helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

from app_fixture_assets import make_assets
from app_harness import DownloadRecorder


@pytest.fixture(scope="session")
def app_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session; the app reads it through CP2IMAGE_ASSETS."""
    return make_assets(tmp_path_factory.mktemp("app-assets"))


@pytest.fixture
def app_env(app_assets: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(app_assets))
    monkeypatch.delenv("CP2IMAGE_MODEL", raising=False)
    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", DownloadRecorder)
    return app_assets

"""With assets missing, every page shows what to do instead of crashing."""
from __future__ import annotations

import pytest

from app_fixture_assets import make_assets
from app_harness import PAGES, DownloadRecorder, open_page, start_app


@pytest.fixture
def empty_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(tmp_path / "nothing-here"))
    monkeypatch.delenv("CP2IMAGE_MODEL", raising=False)
    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", DownloadRecorder)


@pytest.mark.parametrize("page", PAGES)
def test_page_without_model_or_dataset_explains_instead_of_crashing(empty_assets, page):
    at = open_page(start_app(), page)
    messages = [e.value for e in at.error] + [i.value for i in at.info]
    assert messages, "a page with no assets must say what is missing"
    assert not at.exception


def test_home_without_assets_reports_both_problems(empty_assets):
    at = start_app()
    text = " ".join(e.value for e in at.error)
    assert "dataset" in text and "model" in text.lower()


def test_correlation_page_without_evaluation_says_how_to_make_one(tmp_path, monkeypatch):
    make_assets(tmp_path, with_evaluation=False)
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(tmp_path))
    at = open_page(start_app(), "correlation_report")
    assert any("cp2image evaluate" in i.value for i in at.info)

"""`cp2image space build`: a Space folder whose card the Hub client accepts and whose app serves Home."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import SpaceCard
from served import CHROMIUM, HOME_TEXT, clean_env, page_text, serve

from cp2image.cli import main
from cp2image.publish.space import LFS_THRESHOLD_BYTES, SpaceConfig, build_space

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def repository_assets(monkeypatch):
    monkeypatch.delenv("CP2IMAGE_ASSETS", raising=False)  # the committed bundle is what a Space ships


def test_a_docker_space_has_card_code_assets_and_lfs_rules(tmp_path, capsys):
    out = tmp_path / "space"
    assert main(["space", "build", str(out)]) == 0
    card = SpaceCard.load(out / "README.md")
    assert (card.data.sdk, card.data.app_port, card.data.license) == ("docker", 8501, "mit")
    for name in ("Dockerfile", "requirements.txt", "pyproject.toml", "app/Home.py", "pages/pca_explorer.py",
                 "cp2image/models/hub.py", ".streamlit/config.toml", "assets/datasets/bbbc021-sim/dataset.json",
                 "assets/models/cp2image-sim/model.safetensors", "assets/hosting.json"):
        assert (out / name).is_file(), name
    big = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.stat().st_size > LFS_THRESHOLD_BYTES]
    rules = (out / ".gitattributes").read_text().splitlines()
    assert big and all(f"{name} filter=lfs diff=lfs merge=lfs -text" in rules for name in big)
    requirements = (out / "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements and "pytest" not in requirements and "-e ." not in requirements
    assert not list(out.rglob("__pycache__"))
    assert "LFS (> 10 MB): assets/datasets/bbbc021-sim/images.npz" in capsys.readouterr().out


def test_a_streamlit_space_with_a_hub_model_bundles_no_weights(tmp_path):
    out = tmp_path / "space"
    build_space(SpaceConfig(out=out, sdk="streamlit", model="my-lab/cp2image-sim@v1"))
    card = SpaceCard.load(out / "README.md")
    assert (card.data.sdk, card.data.app_file, card.data.models) == ("streamlit", "app/Home.py", ["my-lab/cp2image-sim"])
    assert not (out / "assets" / "models").exists() and not (out / "Dockerfile").exists()
    assert '"CP2IMAGE_MODEL": "my-lab/cp2image-sim@v1"' in (out / "assets" / "hosting.json").read_text()
    lines = (out / "requirements.txt").read_text().splitlines()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines and lines[-1].startswith(". ")


@pytest.mark.parametrize("bad, message", [("/etc", "Hub repo id"), ("not an id!", "valid Hugging Face repo id")])
def test_model_must_be_a_hub_id(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        SpaceConfig(out=tmp_path / "s", model=bad)


def test_an_existing_folder_is_not_overwritten(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        build_space(SpaceConfig(out=tmp_path / "s"))
    assert (tmp_path / "s" / "keep.txt").read_text() == "mine"


@pytest.mark.slow  # ~30-60 s on 2 shared cores: server start, browser, Home with the bundled model
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_the_built_space_serves_a_healthy_home_page(tmp_path):
    pytest.importorskip("playwright.sync_api")
    out = tmp_path / "space"
    build_space(SpaceConfig(out=out))
    env = clean_env(PYTHONPATH=str(out), HOME=str(tmp_path / "home"))  # the Space's own package, not the checkout's
    where = subprocess.run([sys.executable, "-c", "import cp2image; print(cp2image.__file__)"], cwd=out, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(out)
    with serve(out, env, log_path=tmp_path / "streamlit.log") as url:
        # Home paints its title first and the sidebar's weights line once the model has loaded
        # (same script run), so wait for the line this test reads, not the title
        text, errors = page_text(url, wait_for="bundled: cp2image-sim")
    assert not errors, errors
    assert HOME_TEXT in text
    n_cells = pq.ParquetFile(out / "assets" / "datasets" / "bbbc021-sim" / "cells.parquet").metadata.num_rows
    assert "bundled: cp2image-sim" in text and f"{n_cells:,}" in text  # the Space's own weights and dataset

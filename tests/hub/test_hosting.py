"""Hosted mode's settings: scratch-only writes, allowlisted models, one torch thread, settings file;
and a server run as an unprivileged user from a read-only copy with an unwritable HOME."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from served import CHROMIUM, HOME_TEXT, clean_env, page_text, serve

from cp2image import hosting
from cp2image.app_support.model_spec import parse_model_choice

REPO_ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


@pytest.fixture
def hosted_env(monkeypatch, tmp_path):
    for name in ("CP2IMAGE_CACHE", "HF_HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME", "CP2IMAGE_ALLOWED_MODELS",
                 "CP2IMAGE_TORCH_THREADS", "CP2IMAGE_MODEL"):
        monkeypatch.setenv(name, "")  # recorded, so whatever configure_process sets is undone after the test
        monkeypatch.delenv(name)
    monkeypatch.setenv("CP2IMAGE_HOSTED", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(tmp_path / "assets"))
    return tmp_path


def test_every_cache_goes_to_one_private_scratch_folder(hosted_env):
    scratch = hosting.configure_process()
    assert scratch.parent == hosted_env / "tmp" and stat.S_IMODE(scratch.stat().st_mode) == 0o700
    for name in ("CP2IMAGE_CACHE", "HF_HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME"):
        assert Path(os.environ[name]).parent == scratch, name


def test_an_operator_setting_wins_over_hosted_defaults(hosted_env, monkeypatch):
    monkeypatch.setenv("HF_HOME", "/mnt/hf")
    hosting.configure_process()
    assert os.environ["HF_HOME"] == "/mnt/hf"


def test_not_hosted_changes_nothing(monkeypatch):
    monkeypatch.delenv("CP2IMAGE_HOSTED", raising=False)
    monkeypatch.setenv("CP2IMAGE_ASSETS", "/nonexistent")
    before = dict(os.environ)
    assert hosting.configure_process() is None and dict(os.environ) == before
    assert hosting.allowed_hub_models() is None


def test_one_torch_thread_per_request_when_hosted(hosted_env, monkeypatch):
    monkeypatch.setenv("CP2IMAGE_TORCH_THREADS", "8")
    assert hosting.torch_threads() == 1
    monkeypatch.delenv("CP2IMAGE_HOSTED")
    assert hosting.torch_threads() == 8
    monkeypatch.setenv("CP2IMAGE_TORCH_THREADS", "many")
    with pytest.raises(ValueError, match="CP2IMAGE_TORCH_THREADS must be a positive whole number"):
        hosting.torch_threads()


def test_hosted_model_choice_is_limited_to_the_allowlist(hosted_env, monkeypatch):
    monkeypatch.setenv("CP2IMAGE_ALLOWED_MODELS", "my-lab/cp2image-sim, my-lab/cp2image-real")
    allowed = hosting.allowed_hub_models()
    assert allowed == ["my-lab/cp2image-sim", "my-lab/cp2image-real"]
    assert parse_model_choice("my-lab/cp2image-real@v2", allowed_hub_ids=allowed).spec == "my-lab/cp2image-real@v2"
    with pytest.raises(ValueError, match="not one of the models this server offers"):
        parse_model_choice("someone/else", allowed_hub_ids=allowed)


def test_a_built_spaces_settings_file_supplies_defaults(hosted_env, monkeypatch):
    monkeypatch.delenv("CP2IMAGE_HOSTED")
    (hosted_env / "assets").mkdir()
    (hosted_env / "assets" / "hosting.json").write_text('{"CP2IMAGE_HOSTED": "1", "CP2IMAGE_MODEL": "my-lab/m"}')
    assert hosting.configure_process() is not None
    assert os.environ["CP2IMAGE_MODEL"] == "my-lab/m" and hosting.hosted()
    (hosted_env / "assets" / "hosting.json").write_text('{"LD_PRELOAD": "/x.so"}')
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['LD_PRELOAD'\]"):
        hosting.configure_process()


AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


@pytest.fixture
def readonly_copy():
    """The app, pages, package, settings and bundled assets copied to a root-owned folder that
    `nobody` can read but not write, plus a HOME `nobody` cannot write and a TMPDIR it can."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the server as an unprivileged user")
    probe = subprocess.run([*AS_NOBODY, sys.executable, "-c", "import streamlit"], capture_output=True, timeout=120)
    if probe.returncode != 0:  # e.g. the checkout sits under a 0700 temp folder: nobody cannot reach the venv
        pytest.skip(f"user nobody cannot import streamlit from {Path(sys.executable).parent.parent.name}/ "
                    "(a parent folder of this Python environment is private)")
    base = Path(tempfile.mkdtemp(prefix="cp2image-ro-", dir="/tmp"))
    try:
        base.chmod(0o755)
        repo = base / "repo"
        # no committed file there starts with "."; another process's half-written temp files do
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
        for name in ("app", "pages", "cp2image", ".streamlit", "assets"):
            shutil.copytree(REPO_ROOT / name, repo / name, ignore=skip)
        (base / "home").mkdir(mode=0o555)
        (base / "tmp").mkdir()
        os.chown(base / "tmp", NOBODY, NOBODY)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _listing(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.slow  # ~30-60 s: server start and two pages in a browser
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_hosted_app_runs_from_a_read_only_copy_with_an_unwritable_home(readonly_copy, tmp_path):
    pytest.importorskip("playwright.sync_api")
    repo = readonly_copy / "repo"
    before = _listing(repo)
    env = clean_env(CP2IMAGE_HOSTED="1", HOME=str(readonly_copy / "home"), TMPDIR=str(readonly_copy / "tmp"),
                    PYTHONPATH=str(repo), PYTHONDONTWRITEBYTECODE="1")
    with serve(repo, env, log_path=tmp_path / "streamlit.log", command_prefix=AS_NOBODY) as url:
        # Home paints its title before the model loads; the weights line comes with the model
        home, home_errors = page_text(url, wait_for="bundled: cp2image-sim")
        pca, pca_errors = page_text(f"{url}/pca_explorer", wait_for="Click a point on the red line")
    assert not home_errors and not pca_errors, (home_errors, pca_errors, (tmp_path / "streamlit.log").read_text()[-3000:])
    assert HOME_TEXT in home and "bundled: cp2image-sim" in home
    for text in (home, pca):
        assert str(readonly_copy) not in text and "/tmp/" not in text and "/home/" not in text
    assert _listing(repo) == before, "the hosted app wrote into its code/assets folder"
    scratch = readonly_copy / "tmp" / f"cp2image-{NOBODY}"
    assert list((scratch / "cp2image" / "unpacked").glob("*/images.npy")), "the packed dataset unpacks into scratch"

"""`load_model(spec)`: bundled, local, Hub id with offline fallback, invalid ids."""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.models.hub import load_model
from cp2image.models.testing import tiny_model

NAMES = ["Nuclei_AreaShape_Area", "Cells_AreaShape_Area"]


@pytest.fixture
def assets(tmp_path, monkeypatch):
    """A private assets folder holding a tiny 'bundled' model."""
    root = tmp_path / "assets"
    tiny_model(NAMES, seed=1).save_pretrained(root / "models" / "cp2image-sim")
    tiny_model(NAMES, seed=2).save_pretrained(root / "models" / "cp2image-bbbc021-real")
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(root))
    monkeypatch.delenv("CP2IMAGE_MODEL", raising=False)
    return root


def test_default_is_the_bundled_model(assets):
    loaded = load_model()
    assert loaded.source == "bundled: assets/models/cp2image-sim" and loaded.notice is None
    assert loaded.model.feature_names == NAMES and not loaded.model.training


def test_named_bundle_and_env_var(assets, monkeypatch):
    real = load_model("bundled:cp2image-bbbc021-real")
    assert real.source.endswith("cp2image-bbbc021-real")
    monkeypatch.setenv("CP2IMAGE_MODEL", "bundled:cp2image-bbbc021-real")
    assert load_model().source == real.source


def test_local_folder(assets, tmp_path):
    tiny_model(NAMES, seed=3).save_pretrained(tmp_path / "mine")
    loaded = load_model(str(tmp_path / "mine"))
    assert loaded.source == f"local: {tmp_path / 'mine'}"
    x = np.zeros((1, 2))
    np.testing.assert_array_equal(loaded.model.generate(x), tiny_model(NAMES, seed=3).generate(x))


def test_unreachable_hub_falls_back_to_bundle_with_notice(assets):
    # conftest sets HF_HUB_OFFLINE=1, so the Hub cannot be reached
    loaded = load_model("some-org/cp2image-weights")
    assert loaded.source == "bundled: assets/models/cp2image-sim"
    assert "Could not load 'some-org/cp2image-weights' from the Hugging Face Hub" in loaded.notice


def test_invalid_hub_id_is_rejected_before_any_request(assets):
    with pytest.raises(ValueError, match="neither an existing folder nor a valid Hugging Face repo id"):
        load_model("not a repo id!")


def test_missing_bundle_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(tmp_path / "empty"))
    monkeypatch.delenv("CP2IMAGE_MODEL", raising=False)
    with pytest.raises(FileNotFoundError, match="set CP2IMAGE_MODEL"):
        load_model()

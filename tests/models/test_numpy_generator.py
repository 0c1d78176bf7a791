"""Home's example is drawn by the saved weights evaluated in NumPy (`cp2image.models.numpy_generator`).

These tests hold that it is the same model: the same pixels as the torch model (up to one grey level
of float round-off) on both bundled models and a random one, the same file checks, and no other
architecture served. That it lets Home be drawn without importing torch: tests/app/test_home_without_torch.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cp2image.models.numpy_generator import LeanUnsupported, load_lean, read_lean_generator, tensor_digest

REPO = Path(__file__).resolve().parents[2]
BUNDLED = sorted(p for p in (REPO / "assets" / "models").glob("*") if (p / "config.json").is_file())


def _same_images(folder: Path, z: np.ndarray) -> None:
    from cp2image.models.hub import load_model

    expected = load_model(str(folder), fallback=False).model.generate_from_normalised(z)
    got = read_lean_generator(folder).generate_from_normalised(z)
    assert got.dtype == np.uint8 and got.shape == expected.shape
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float round-off at a rounding boundary, nothing more


@pytest.mark.parametrize("folder", BUNDLED, ids=[p.name for p in BUNDLED])
def test_the_numpy_generator_draws_the_bundled_models_images(folder: Path):
    lean = read_lean_generator(folder)
    z = np.random.default_rng(0).normal(scale=2.0, size=(6, len(lean.feature_names))).astype(np.float32)
    _same_images(folder, z)


@pytest.mark.parametrize("upsample_mode, batch_norm, padding_mode", [
    ("nearest", True, "zeros"), ("bilinear", True, "zeros"), ("bilinear", False, "zeros"),
    ("bilinear", True, "replicate"), ("nearest", False, "replicate")])
def test_the_numpy_generator_draws_a_random_models_images(tmp_path: Path, upsample_mode: str, batch_norm: bool,
                                                          padding_mode: str):
    import torch

    from cp2image.models.cp2image import CP2Image, CP2ImageConfig
    from cp2image.models.testing import with_trained_statistics

    names = [f"f{i}" for i in range(7)]
    config = CP2ImageConfig(feature_names=names, feature_mean=[1.0] * 7, feature_scale=[2.0] * 7, image_size=36,
                            base_filters=6, kernel_size=3, upsample_mode=upsample_mode, batch_norm=batch_norm,
                            padding_mode=padding_mode)
    torch.manual_seed(0)
    model = with_trained_statistics(CP2Image(config)).eval()
    model.save_pretrained(tmp_path)
    _same_images(tmp_path, np.random.default_rng(1).normal(size=(4, 7)).astype(np.float32))
    raw = np.random.default_rng(2).normal(scale=40.0, size=(3, 7))  # some beyond ±10 SD: clipped alike
    np.testing.assert_array_equal(read_lean_generator(tmp_path).normalise(raw), model.normalise(raw, warn=False))


def _copy(folder: Path, to: Path) -> Path:
    to.mkdir()
    for name in ("config.json", "model.safetensors"):
        (to / name).write_bytes((folder / name).read_bytes())
    return to


def test_weights_of_another_architecture_or_altered_are_refused(tmp_path: Path):
    folder = BUNDLED[0]
    changed = _copy(folder, tmp_path / "changed")
    config = json.loads((changed / "config.json").read_text())
    config["kernel_size"] = 3  # config.json no longer describes the stored tensors
    (changed / "config.json").write_text(json.dumps(config))
    with pytest.raises(LeanUnsupported):
        read_lean_generator(changed)
    flipped = _copy(folder, tmp_path / "flipped")
    data = bytearray((flipped / "model.safetensors").read_bytes())
    data[-3] ^= 0x01  # one bit inside the last tensor
    (flipped / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(LeanUnsupported, match="SHA-256"):
        read_lean_generator(flipped)
    assert load_lean(str(flipped)) is None  # the app then loads the torch model, which says what is wrong


def test_the_digest_is_the_one_the_weights_were_saved_with():
    import torch
    from safetensors.numpy import load_file

    from cp2image.models.weights import tensor_digest as torch_digest

    arrays = load_file(str(BUNDLED[0] / "model.safetensors"))
    assert tensor_digest(arrays) == torch_digest({k: torch.from_numpy(v) for k, v in arrays.items()})


def test_hub_models_are_left_to_the_torch_model():
    assert load_lean("some-org/some-model") is None  # its fallback and notices are hub.load_model's


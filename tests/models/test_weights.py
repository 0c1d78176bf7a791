"""Saved weights load back exactly; damaged or mismatched ones are refused with a clear error.

The one home of the weight-loading cases (cp2image/models/weights.py, hub_io.py).
Safetensors only: a folder holding a pickle (`pytorch_model.bin`) is not loaded; a
truncated file, a tampered header, a config.json that disagrees with the tensors, or a
config that is not JSON all raise errors naming the file.
"""
from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cp2image.models import CP2Image
from cp2image.models.testing import tiny_model

FEATURES = ["Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin", "Cytoplasm_AreaShape_Area"]
MEAN, SCALE = [1.0, 2.0, 3.0], [2.0, 2.0, 0.5]
# Each example copies a model folder; keep them few and deterministic.
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _model() -> CP2Image:
    return tiny_model(FEATURES, seed=5, feature_mean=MEAN, feature_scale=SCALE)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights") / "model"
    _model().save_pretrained(folder)
    return folder


def _copy(src: Path, into: Path) -> Path:
    return Path(shutil.copytree(src, into / "model"))


def _header(path: Path) -> tuple[int, dict]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return n, json.loads(raw[8:8 + n])


def _rewrite_header(path: Path, header: dict) -> None:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    body = json.dumps(header).encode()
    body += b" " * ((8 - len(body) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n:])


def test_a_saved_model_round_trips_with_its_config(saved):
    config = json.loads((saved / "config.json").read_text())
    config = config.get("config", config)
    assert config["feature_names"] == FEATURES and config["feature_mean"] == MEAN
    assert config["channels"] == ["DNA", "Tubulin", "Actin"] and config["image_size"] == 68
    model = CP2Image.from_pretrained(saved)
    assert not model.training and model.feature_names == FEATURES
    x = np.random.default_rng(2).standard_normal((4, 3)) * 2 + 2
    np.testing.assert_array_equal(model.generate(x), _model().generate(x))


@PROPERTY
@given(fraction=st.floats(min_value=0.0, max_value=0.999))
def test_truncated_safetensors_is_refused_at_any_length(saved, fraction):
    with tempfile.TemporaryDirectory() as tmp:
        folder = _copy(saved, Path(tmp))
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(ValueError, match=r"model\.safetensors: cannot read safetensors weights.*truncated or corrupt"):
            CP2Image.from_pretrained(folder)


def _grow_bias(header: dict) -> None:
    header["generator.dense.bias"]["shape"] = [header["generator.dense.bias"]["shape"][0] + 1]


def _rename_bias(header: dict) -> None:
    header["generator.dense.renamed"] = header.pop("generator.dense.bias")


@pytest.mark.parametrize("edit, problem", [
    (_grow_bias, r"model\.safetensors"),
    (_rename_bias, r"do not match the SHA-256|missing tensor.*generator\.dense\.bias"),
], ids=["tampered-shape", "renamed-tensor"])
def test_a_tampered_header_is_refused(saved, tmp_path, edit, problem):
    folder = _copy(saved, tmp_path)
    path = folder / "model.safetensors"
    _, header = _header(path)
    edit(header)
    _rewrite_header(path, header)
    with pytest.raises(ValueError, match=problem):
        CP2Image.from_pretrained(folder)


@PROPERTY
@given(position=st.floats(min_value=0.0, max_value=0.999), bit=st.integers(0, 7))
def test_any_flipped_bit_in_the_tensor_data_is_refused(saved, position, bit):
    """safetensors alone would load such a file silently; the stored digest catches it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = _copy(saved, Path(tmp))
        path = folder / "model.safetensors"
        n, _ = _header(path)
        raw = bytearray(path.read_bytes())
        where = 8 + n + int((len(raw) - 8 - n) * position)
        raw[where] ^= 1 << bit
        path.write_bytes(bytes(raw))
        with pytest.raises(ValueError, match=r"do not match the SHA-256 recorded when the file was saved"):
            CP2Image.from_pretrained(folder)


def test_nan_weights_without_a_digest_are_refused_at_generation(saved, tmp_path):
    """A file from elsewhere (no digest) whose weights became NaN never yields a NaN image."""
    folder = _copy(saved, tmp_path)
    path = folder / "model.safetensors"
    n, header = _header(path)
    header.pop("__metadata__", None)
    start, stop = header["generator.to_image.bias"]["data_offsets"]
    _rewrite_header(path, header)
    n, _ = _header(path)
    raw = bytearray(path.read_bytes())
    raw[8 + n + start: 8 + n + stop] = np.full((stop - start) // 4, np.nan, dtype=np.float32).tobytes()
    path.write_bytes(bytes(raw))
    model = CP2Image.from_pretrained(folder)
    with pytest.raises(ValueError, match=r"NaN/inf pixels"):
        model.generate(np.zeros((1, 3)))


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda c: c.update(feature_names=c["feature_names"] + ["Nuclei_Extra"],
                            feature_mean=c["feature_mean"] + [0.0], feature_scale=c["feature_scale"] + [1.0]),
         r"weights do not match config\.json.*shape mismatch"),
        (lambda c: c.update(base_filters=8), r"weights do not match config\.json"),
        (lambda c: c.update(feature_scale=c["feature_scale"][:-1]), r"feature_scale has 2 entries for 3 features"),
        (lambda c: c.update(feature_scale=[1.0, 0.0, 1.0]), r"feature_scale entries must be > 0"),
        (lambda c: c.pop("feature_names"), r"config\.json is not a valid CP2Image config"),
    ],
    ids=["extra-feature", "other-width", "short-stats", "zero-scale", "no-feature-names"],
)
def test_config_that_disagrees_with_the_tensors_is_refused(saved, tmp_path, edit, problem):
    folder = _copy(saved, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    edit(config.get("config", config))
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=problem):
        CP2Image.from_pretrained(folder)


def test_config_that_is_not_json_is_refused_naming_the_file(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        CP2Image.from_pretrained(folder)


def test_a_pickle_weights_file_is_never_loaded(saved, tmp_path):
    """Only model.safetensors is read; a pytorch_model.bin (pickle) beside config.json is ignored."""
    folder = _copy(saved, tmp_path)
    state = CP2Image.from_pretrained(saved).state_dict()
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match=r"missing model\.safetensors"):
        CP2Image.from_pretrained(folder)


def test_a_folder_without_config_is_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "config.json").unlink()
    with pytest.raises(ValueError, match=r"no config\.json found"):
        CP2Image.from_pretrained(folder)


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask-022", "umask-077"])
def test_saved_weights_get_the_permissions_of_an_ordinary_file(tmp_path, umask):
    """safetensors 0.8 creates its files 0600: a model saved on a shared server must still be readable by others
    when the umask allows it, and stay private when the umask says so."""
    import os
    import stat

    old = os.umask(umask)
    try:
        _model().save_pretrained(tmp_path / "model")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model" / "model.safetensors").stat().st_mode) == 0o666 & ~umask

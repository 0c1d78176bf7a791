"""Loading safetensors weights with errors that say what is wrong with the file.

Used by every Hub-mixin model so that a truncated download or a config.json that
does not describe the stored tensors fails loudly instead of loading garbage.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_model
from torch import nn

from cp2image.data.files import give_ordinary_permissions

# safetensors checks structure but not content: a flipped bit inside a tensor loads silently.
# Files saved by cp2image carry a digest of their tensors in the header metadata.
DIGEST_KEY = "cp2image_tensor_sha256"


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of `tensors` in name order (layout-independent)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_safetensors_with_digest(model: nn.Module, path: str | Path) -> None:
    """`safetensors.torch.save_model` (shared tensors de-duplicated) plus the tensors' digest."""
    save_model(model, str(path))
    save_model(model, str(path), metadata={DIGEST_KEY: tensor_digest(load_file(str(path)))})
    give_ordinary_permissions(path)


def read_safetensors(path: str | Path, *, device: str = "cpu") -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; ValueError if it is truncated or not safetensors."""
    path = Path(path)
    try:
        tensors = load_file(str(path), device=device)
        with safe_open(str(path), framework="pt") as fh:
            expected = (fh.metadata() or {}).get(DIGEST_KEY)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(
            f"{path}: cannot read safetensors weights ({err}); the file is truncated or corrupt — "
            "download or save it again"
        ) from err
    if expected is not None and tensor_digest(tensors) != expected:
        raise ValueError(
            f"{path}: the tensor data do not match the SHA-256 recorded when the file was saved; "
            "the file was modified or corrupted — download or save it again"
        )
    return tensors


def load_safetensors_strict(model: nn.Module, path: str | Path, *, strict: bool = True,
                            device: str = "cpu") -> None:
    """Load weights into `model`, naming missing/unexpected keys and shape mismatches."""
    state = read_safetensors(path, device=device)
    expected = model.state_dict()
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs config {tuple(expected[k].shape)}"
        for k, v in state.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es), e.g. {mismatched[:3]}")
    if strict and missing:
        problems.append(f"{len(missing)} missing tensor(s), e.g. {missing[:3]}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[:3]}")
    if problems:
        raise ValueError(
            f"{path}: weights do not match config.json ({'; '.join(problems)}); the config and the "
            "weights come from different models"
        )
    model.load_state_dict(state, strict=strict)

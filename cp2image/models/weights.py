"""Loading safetensors weights with errors that say what is wrong with the file.

Used by every Hub-mixin model so that a truncated download or a config.json that
does not describe the stored tensors fails loudly instead of loading garbage.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn


def read_safetensors(path: str | Path, *, device: str = "cpu") -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file; ValueError if it is truncated or not safetensors."""
    path = Path(path)
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(
            f"{path}: cannot read safetensors weights ({err}); the file is truncated or corrupt — "
            "download or save it again"
        ) from err


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

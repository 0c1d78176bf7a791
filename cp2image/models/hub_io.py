"""A `PyTorchModelHubMixin` that loads strictly and fails with clear messages.

The stock mixin loads with `strict=False` and prints to stdout; every cp2image
model inherits this instead so that a config.json/weights mismatch, a truncated
safetensors file or a folder without config.json raises ValueError/FileNotFoundError.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from huggingface_hub import PyTorchModelHubMixin, hf_hub_download

from cp2image.models.weights import load_safetensors_strict, save_safetensors_with_digest

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class StrictHubMixin(PyTorchModelHubMixin):
    """Subclasses take one dataclass `config` argument and set `config_class` to its type."""

    config_class: ClassVar[type]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *, strict: bool = True,
                        **kwargs: Any):
        """Load from a local directory or a Hub repo id, checking every tensor against config.json."""
        try:
            return super().from_pretrained(str(pretrained_model_name_or_path), strict=strict, **kwargs)
        except json.JSONDecodeError as err:
            raise ValueError(f"{pretrained_model_name_or_path}: {CONFIG_FILE} is not valid JSON ({err})") from err
        except TypeError as err:  # config.json lacks or mistypes a required field
            raise ValueError(
                f"{pretrained_model_name_or_path}: config.json is not a valid {cls.__name__} config ({err})"
            ) from err

    def _save_pretrained(self, save_directory: Path) -> None:
        """model.safetensors with a digest of its tensors, checked again on every load."""
        model = self.module if hasattr(self, "module") else self
        save_safetensors_with_digest(model, Path(save_directory) / WEIGHTS_FILE)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: Any,
                         force_download: bool, local_files_only: bool, token: Any,
                         map_location: str = "cpu", strict: bool = True, **model_kwargs: Any):
        config = model_kwargs.pop("config", None)
        if config is None:
            raise ValueError(f"{model_id}: no {CONFIG_FILE} found; is this a {cls.__name__} model folder or repo?")
        if isinstance(config, dict):
            config = cls.config_class(**{k: v for k, v in config.items()
                                         if k in cls.config_class.__dataclass_fields__})
        model = cls(config, **model_kwargs)
        if os.path.isdir(model_id):
            weights = Path(model_id) / WEIGHTS_FILE
            if not weights.exists():
                raise FileNotFoundError(f"{model_id}: missing {WEIGHTS_FILE}")
        else:
            weights = Path(hf_hub_download(
                repo_id=model_id, filename=WEIGHTS_FILE, revision=revision, cache_dir=cache_dir,
                force_download=force_download, token=token, local_files_only=local_files_only,
            ))
        load_safetensors_strict(model, weights, strict=strict, device=map_location)
        model.eval()
        return model

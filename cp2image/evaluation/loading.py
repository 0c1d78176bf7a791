"""Load any evaluable model (CP2Image or a Table 1 baseline) from a folder, run or spec.

A training run folder (`RUN/model/config.json`) or a model folder is read directly and
its class chosen from `provenance.model_kind` in config.json (written by the trainer),
else from the config's fields (`feature_names` → CP2Image). Anything else (Hub id,
"bundled[:name]", unset → $CP2IMAGE_MODEL / bundled) goes through
`cp2image.models.hub.load_model`, which serves CP2Image models.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ModelForEvaluation:
    model: object
    kind: str  # cp2image | vae | vaeplus | lsgan
    source: str
    notice: str | None = None


def _kind_from_config(config: dict) -> str | None:
    kind = (config.get("provenance") or {}).get("model_kind")
    if kind:
        return str(kind)
    if "feature_names" in config:
        return "cp2image"
    return None


def load_for_evaluation(spec: str | os.PathLike | None) -> ModelForEvaluation:
    """Resolve `spec` to a loaded model in eval mode."""
    from cp2image.models.hub import MODEL_CLASSES, load_model

    folder = Path(spec).expanduser() if spec not in (None, "") else None
    if folder is not None and folder.is_dir():
        if not (folder / "config.json").is_file() and (folder / "model" / "config.json").is_file():
            folder = folder / "model"  # a training run folder
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise FileNotFoundError(f"{folder}: no config.json; pass a model folder or a training run folder")
        try:
            config = json.loads(config_path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{config_path}: not valid JSON ({err})") from err
        kind = _kind_from_config(config)
        if kind not in MODEL_CLASSES:
            raise ValueError(
                f"{config_path}: cannot tell the model kind (provenance.model_kind={kind!r}); "
                f"expected one of {sorted(MODEL_CLASSES)}"
            )
        model = MODEL_CLASSES[kind].from_pretrained(folder)
        model.eval()
        return ModelForEvaluation(model=model, kind=kind, source=f"local: {folder}")
    loaded = load_model(None if spec in (None, "") else str(spec))
    return ModelForEvaluation(model=loaded.model, kind="cp2image", source=loaded.source, notice=loaded.notice)


__all__ = ["ModelForEvaluation", "load_for_evaluation"]

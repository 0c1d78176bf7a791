"""Where the bundled demo dataset and weights live.

The app, the CLI defaults and the tests use these, so a fresh clone works offline.
`CP2IMAGE_ASSETS` overrides the folder (e.g. a mounted volume in a hosted demo).
"""
from __future__ import annotations

import os
from pathlib import Path

BUNDLED_DATASET_NAME = "bbbc021-sim"
BUNDLED_MODEL_NAME = "cp2image-sim"
REAL_CELLS_MODEL_NAME = "cp2image-bbbc021-real"


def assets_dir() -> Path:
    """The assets folder: `$CP2IMAGE_ASSETS`, else `assets/` beside the package."""
    override = os.environ.get("CP2IMAGE_ASSETS")
    return Path(override) if override else Path(__file__).resolve().parents[1] / "assets"


def bundled_dataset_dir() -> Path:
    """The simulated BBBC021 slice every default uses."""
    return assets_dir() / "datasets" / BUNDLED_DATASET_NAME


def bundled_model_dir(name: str = BUNDLED_MODEL_NAME) -> Path:
    """A bundled model folder (`config.json` + `model.safetensors` + `README.md` card)."""
    return assets_dir() / "models" / name

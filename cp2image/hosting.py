"""Hosted mode (`CP2IMAGE_HOSTED=1`): the settings a public demo server runs with.

A public server is shared by strangers and often has a read-only image filesystem, so
in hosted mode:

- everything the app writes (unpacked datasets, the Hugging Face cache, matplotlib's
  font cache) goes to one temporary folder, `$TMPDIR/cp2image-<uid>`; nothing is written
  beside the code or in `HOME`;
- visitors choose only among offered models (bundled ones and the Hub ids listed in
  `CP2IMAGE_ALLOWED_MODELS`, comma-separated) and offered datasets
  (`cp2image.data.catalog`), never a path; local installs may type any Hub id;
- torch runs one intra-op thread per request, whatever `CP2IMAGE_TORCH_THREADS` says
  (many small requests at once: more threads only contend);
- uploads stay capped by `.streamlit/config.toml` (maxUploadSize) and the profile checks.

`configure_process()` applies the filesystem and thread settings once per process; the
app calls it first thing.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from cp2image.assets import assets_dir

ENV_HOSTED = "CP2IMAGE_HOSTED"
ENV_ALLOWED_MODELS = "CP2IMAGE_ALLOWED_MODELS"
ENV_TORCH_THREADS = "CP2IMAGE_TORCH_THREADS"
_TRUE = {"1", "true", "yes", "on"}
SETTINGS_FILE = "hosting.json"  # in the assets folder: environment defaults a built Space ships with
SETTINGS_KEYS = frozenset({ENV_HOSTED, ENV_ALLOWED_MODELS, "CP2IMAGE_MODEL", "CP2IMAGE_DATA", "CP2IMAGE_DATA_ROOTS",
                           "HF_HUB_OFFLINE"})


def hosted() -> bool:
    """Whether CP2IMAGE_HOSTED is set to a true value."""
    return os.environ.get(ENV_HOSTED, "").strip().lower() in _TRUE


def allowed_hub_models() -> list[str] | None:
    """Hub ids a visitor may pick in hosted mode; None (any valid id) when not hosted."""
    if not hosted():
        return None
    return [m.strip() for m in os.environ.get(ENV_ALLOWED_MODELS, "").split(",") if m.strip()]


def torch_threads() -> int:
    """Intra-op threads per request: 1 when hosted, else CP2IMAGE_TORCH_THREADS (default 1)."""
    if hosted():
        return 1
    text = os.environ.get(ENV_TORCH_THREADS, "1").strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{ENV_TORCH_THREADS} must be a positive whole number, not {text!r}")
    return int(text)


def scratch_dir() -> Path:
    """The one folder hosted mode writes to (created, private to this user)."""
    folder = Path(tempfile.gettempdir()) / f"cp2image-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def settings_defaults() -> dict[str, str]:
    """`assets/hosting.json` (written by `cp2image space build`): {variable: value} defaults."""
    path = assets_dir() / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{SETTINGS_FILE} in the assets folder is not valid JSON ({err})") from err
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{SETTINGS_FILE} must map variable names to text values")
    unknown = sorted(set(data) - SETTINGS_KEYS)
    if unknown:
        raise ValueError(f"{SETTINGS_FILE}: unknown setting(s) {unknown}; allowed: {sorted(SETTINGS_KEYS)}")
    return data


def configure_process() -> Path | None:
    """Apply `assets/hosting.json`'s defaults, then, in hosted mode, point every cache at the
    scratch folder; returns it (None when not hosted).

    Only variables the operator did not set are changed, so the real environment (and a
    mounted cache) still wins.
    """
    for name, value in settings_defaults().items():
        os.environ.setdefault(name, value)
    if not hosted():
        return None
    scratch = scratch_dir()
    for name, sub in (("CP2IMAGE_CACHE", "cp2image"), ("HF_HOME", "huggingface"), ("MPLCONFIGDIR", "matplotlib"),
                      ("XDG_CACHE_HOME", "xdg")):
        if not os.environ.get(name):
            os.environ[name] = str(scratch / sub)
    return scratch


__all__ = ["ENV_ALLOWED_MODELS", "ENV_HOSTED", "allowed_hub_models", "configure_process", "hosted", "scratch_dir",
           "settings_defaults", "torch_threads"]

"""Resolve a model spec (bundled / local folder / Hub repo id) to a loaded CP2Image.

The app and CLI call `load_model(spec)`; `spec=None` reads `CP2IMAGE_MODEL`, and
unset means the weights bundled under assets/, so everything works offline. A Hub
id is validated with huggingface_hub's own validator before any request; if the
Hub cannot be reached (offline mode, no network, missing repo) the bundled model
is used instead and `notice` says why.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
from huggingface_hub.utils import HFValidationError, validate_repo_id

from cp2image.assets import BUNDLED_MODEL_NAME, assets_dir, bundled_model_dir
from cp2image.models.cp2image import CP2Image
from cp2image.models.lsgan import LSGAN
from cp2image.models.vae import VAE, VAEplus

log = logging.getLogger(__name__)

ENV_VAR = "CP2IMAGE_MODEL"
MODEL_CLASSES = {"cp2image": CP2Image, "vae": VAE, "vaeplus": VAEplus, "lsgan": LSGAN}
# Failures that mean "the Hub could not give us this model" rather than "the code is wrong".
_HUB_ERRORS = (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, OSError, ConnectionError,
               TimeoutError)


@dataclass
class LoadedModel:
    model: CP2Image
    source: str  # "bundled: assets/models/cp2image-sim" / "local: /path" / "hub: org/name"
    notice: str | None = None  # set when the requested model could not be used
    load_seconds: float = 0.0


def _offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub reads it only once, at import)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or flag in {"1", "ON", "YES", "TRUE"}


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(assets_dir().resolve().parent))
    except ValueError:
        return str(path)


def load_bundled(name: str = BUNDLED_MODEL_NAME) -> LoadedModel:
    """A model shipped under assets/models/<name>."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise ValueError(f"{name!r} is not a bundled model name; use a folder name under {assets_dir() / 'models'}")
    folder = bundled_model_dir(name)
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(
            f"bundled model not found at {folder}; set {ENV_VAR} to a model folder or Hub id, "
            "or train one with `cp2image train`"
        )
    start = time.perf_counter()
    model = CP2Image.from_pretrained(folder)
    return LoadedModel(model=model, source=f"bundled: {_display(folder)}",
                       load_seconds=time.perf_counter() - start)


def load_model(spec: str | os.PathLike | None = None) -> LoadedModel:
    """Load CP2Image from `spec`: None/"" → $CP2IMAGE_MODEL → bundled; "bundled[:name]";
    an existing directory; or a Hub repo id ("org/name", optionally "org/name@revision")."""
    if spec is None:
        spec = os.environ.get(ENV_VAR, "").strip() or None
    if spec is None or str(spec) == "bundled":
        return load_bundled()
    text = str(spec)
    if text.startswith("bundled:"):
        return load_bundled(text.split(":", 1)[1])
    folder = Path(text).expanduser()
    if folder.is_dir():
        start = time.perf_counter()
        model = CP2Image.from_pretrained(folder)
        return LoadedModel(model=model, source=f"local: {folder}", load_seconds=time.perf_counter() - start)
    repo_id, _, revision = text.partition("@")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(
            f"model {text!r} is neither an existing folder nor a valid Hugging Face repo id ({err})"
        ) from err
    start = time.perf_counter()
    try:
        model = CP2Image.from_pretrained(repo_id, revision=revision or None, local_files_only=_offline())
    except _HUB_ERRORS as err:
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
        fallback = load_bundled()
        notice = (f"Could not load {text!r} from the Hugging Face Hub ({reason}); "
                  f"using the {fallback.source} model instead.")
        log.warning(notice)
        fallback.notice = notice
        return fallback
    return LoadedModel(model=model, source=f"hub: {text}", load_seconds=time.perf_counter() - start)

"""One typed model reference and the whole bundled → local → Hub → offline-fallback chain.

Every caller (app, CLI, evaluation) names a model with a `ModelRef` — what kind of
source it is (bundled / local folder / Hugging Face Hub), its name or path, and a Hub
revision — instead of passing strings such as "bundled:x" that each layer re-parses.
`resolve(ref)` turns it into a local folder (the Hub snapshot comes through
huggingface_hub's own cache, so the model card, evaluation files and
`feature_coupling.safetensors` beside the weights come too); `load_model(spec)` loads
that folder strictly (tensor digests checked) and, when the Hub cannot supply the
model, falls back to the bundled weights with a one-sentence `notice`.

Messages never contain a server path: a model is named by `ModelRef.label`.

Naming and resolving a model imports no torch (the app's sidebar and Home parse a reference
before anything is drawn); the model classes, and torch with them, are imported when weights
are loaded (`load_resolved`) or `MODEL_CLASSES` is first read.
"""
from __future__ import annotations

import enum
import json
import logging
import os
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import HFValidationError, validate_repo_id

from huggingface_hub.constants import CONFIG_NAME as CONFIG_FILE  # the names the Hub mixin saves under
from huggingface_hub.constants import SAFETENSORS_SINGLE_FILE as WEIGHTS_FILE

from cp2image.assets import BUNDLED_MODEL_NAME, bundled_model_dir

if TYPE_CHECKING:
    from cp2image.models.cp2image import CP2Image

log = logging.getLogger(__name__)

ENV_VAR = "CP2IMAGE_MODEL"
MODEL_KINDS = ("cp2image", "vae", "vaeplus", "lsgan")  # config.json's provenance.model_kind values
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE)
HUB_TIMEOUT_S = 5.0  # per request; a Hub that does not answer in this time counts as unreachable
# Branch, tag or commit: letters, digits and . _ - / (Hub branch names may hold '/').
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")


class ModelKind(str, enum.Enum):
    BUNDLED = "bundled"  # a folder under assets/models/, named by its folder name
    LOCAL = "local"  # any model folder (or training run folder) on this machine
    HUB = "hub"  # a Hugging Face Hub repo id, optionally at a revision


class ModelUnavailable(OSError):
    """The model cannot be obtained (Hub unreachable, not cached, repo or file missing).

    Distinct from ValueError (the files exist but are wrong, e.g. tampered weights), which
    is never answered with a silent fallback.
    """


@dataclass(frozen=True)
class ModelRef:
    """Which model to load; build it with `parse`, `bundled`, `local` or `hub`."""

    kind: ModelKind
    name: str  # bundled folder name | absolute local path | Hub repo id ("org/name")
    revision: str | None = None  # Hub only: branch, tag or commit hash

    def __post_init__(self) -> None:
        if self.kind is ModelKind.BUNDLED:
            if not self.name or self.name in (".", "..") or Path(self.name).name != self.name or "\\" in self.name:
                raise ValueError(f"{self.name!r} is not a bundled model name; use a folder name under assets/models")
        elif self.kind is ModelKind.HUB:
            try:
                validate_repo_id(self.name)
            except HFValidationError as err:
                raise ValueError(f"{self.name!r} is not a valid Hugging Face repo id ({err})") from err
            if "/" not in self.name:
                raise ValueError(f"{self.name!r} is not a Hub model id; use 'org/name'")
            if self.revision is not None and not _REVISION.fullmatch(self.revision):
                raise ValueError(f"{self.revision!r} is not a valid Hub revision (branch, tag or commit)")
        if self.revision is not None and self.kind is not ModelKind.HUB:
            raise ValueError("only Hub models have a revision")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def bundled(cls, name: str = BUNDLED_MODEL_NAME) -> "ModelRef":
        return cls(ModelKind.BUNDLED, name)

    @classmethod
    def local(cls, path: str | os.PathLike) -> "ModelRef":
        return cls(ModelKind.LOCAL, str(Path(path).expanduser().resolve()))

    @classmethod
    def hub(cls, repo_id: str, revision: str | None = None) -> "ModelRef":
        return cls(ModelKind.HUB, repo_id, revision or None)

    @classmethod
    def parse(cls, spec: "str | os.PathLike | ModelRef | None" = None) -> "ModelRef":
        """The reference a user or config gave as text.

        None/"" → `$CP2IMAGE_MODEL`, unset → the bundled default; "bundled" or
        "bundled:NAME"; an existing folder → local; the bare name of a bundled model (as the
        sidebar accepts it, e.g. "cp2image-bbbc021-real") → bundled; else a Hub id
        "org/name[@revision]".
        """
        if isinstance(spec, ModelRef):
            return spec
        text = "" if spec is None else str(spec).strip()
        if not text:
            text = os.environ.get(ENV_VAR, "").strip()
        if not text or text == "bundled":
            return cls.bundled()
        if text.startswith("bundled:"):
            return cls.bundled(text.split(":", 1)[1])
        if Path(text).expanduser().is_dir():
            return cls.local(text)
        if Path(text).name == text and "@" not in text and bundled_model_dir(text).is_dir():
            return cls.bundled(text)
        repo_id, _, revision = text.partition("@")
        if text.startswith(("/", "./", "../", "~")) or repo_id.count("/") > 1 or "\\" in text:
            raise FileNotFoundError(f"{text}: no such model folder")  # a path, not a Hub id
        try:
            return cls.hub(repo_id, revision or None)
        except ValueError as err:
            raise ValueError(
                f"model {text!r} is neither an existing folder nor a valid Hugging Face repo id ({err})") from err

    # ------------------------------------------------------------------ text forms
    @property
    def spec(self) -> str:
        """Text that `parse` turns back into this reference (for env vars and configs)."""
        if self.kind is ModelKind.BUNDLED:
            return f"bundled:{self.name}"
        if self.kind is ModelKind.HUB:
            return f"{self.name}@{self.revision}" if self.revision else self.name
        return self.name

    @property
    def label(self) -> str:
        """What pages and messages show: never a server path (a local model shows its folder name)."""
        if self.kind is ModelKind.LOCAL:
            return f"local: {Path(self.name).name}"
        shown = self.name if self.kind is ModelKind.BUNDLED else self.spec
        return f"{self.kind.value}: {shown}"

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class ResolvedModel:
    """A reference together with the local folder that holds its files."""

    ref: ModelRef
    folder: Path  # config.json, model.safetensors, README.md card, evaluation/, feature_coupling.safetensors…
    commit: str | None = None  # Hub snapshot commit

    @property
    def label(self) -> str:
        return f"{self.ref.label} ({self.commit[:7]})" if self.commit else self.ref.label


@dataclass
class LoadedModel:
    model: CP2Image
    ref: ModelRef  # what was loaded (the bundled default after a fallback)
    folder: Path  # the folder the weights were read from; files beside them live here
    requested: ModelRef | None = None  # what was asked for, when it differs from `ref`
    notice: str | None = None  # one plain sentence, set when the requested Hub model could not be had
    problem: str | None = None  # set by `load_or_default` when the requested model failed to load
    load_seconds: float = 0.0
    commit: str | None = None  # Hub snapshot commit
    kind: str = "cp2image"  # model class key, one of MODEL_KINDS

    @property
    def source(self) -> str:
        """Display label, e.g. "bundled: cp2image-sim" or "hub: org/name (1a2b3c4)"."""
        return ResolvedModel(self.ref, self.folder, self.commit).label


# ----------------------------------------------------------------------------- Hub plumbing


def offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub reads it only once, at import)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or flag in {"1", "ON", "YES", "TRUE"}


def hub_cache_dir() -> Path:
    """huggingface_hub's cache folder by its documented rules, read from the environment now
    (HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/...),
    so that hosted mode and tests can move it after huggingface_hub was imported."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _hub_snapshot(ref: ModelRef) -> ResolvedModel:
    """Every file of the repo at `ref.revision`, through the Hub cache (cache only when offline)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError

    at = f" at revision {ref.revision!r}" if ref.revision else ""
    try:
        folder = Path(snapshot_download(ref.name, revision=ref.revision, cache_dir=hub_cache_dir(),
                                        local_files_only=offline(), etag_timeout=HUB_TIMEOUT_S))
    except RevisionNotFoundError as err:
        raise ModelUnavailable(f"The Hub model {ref.name!r} has no revision {ref.revision!r}.") from err
    except (RepositoryNotFoundError, GatedRepoError) as err:
        raise ModelUnavailable(
            f"There is no public model {ref.name!r} on the Hugging Face Hub; check the spelling.") from err
    except IncompleteSnapshotError as err:
        raise ModelUnavailable(
            f"The cached copy of {ref.name!r}{at} is incomplete and the Hub cannot be reached.") from err
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as err:
        why = "offline mode is on" if offline() else "no connection"
        raise ModelUnavailable(
            f"{ref.name!r}{at} is not in the local Hugging Face cache and the Hub cannot be reached ({why})."
        ) from err
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", "error")
        raise ModelUnavailable(f"The Hugging Face Hub answered HTTP {status} for {ref.name!r}{at}.") from err
    except (ConnectionError, TimeoutError, OSError) as err:
        raise ModelUnavailable(
            f"The Hugging Face Hub could not be reached for {ref.name!r} ({type(err).__name__}).") from err
    commit = folder.name if re.fullmatch(r"[0-9a-f]{40}", folder.name) else None
    resolved = ResolvedModel(ref, folder, commit)
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelUnavailable(f"The Hub model {resolved.label} has no {' or '.join(missing)}; is it a cp2image model?")
    return resolved


# ----------------------------------------------------------------------------- resolve + load


def model_classes() -> dict[str, type]:
    """Model class per `MODEL_KINDS` key; imports torch, so only called when weights are loaded."""
    from cp2image.models.cp2image import CP2Image
    from cp2image.models.lsgan import LSGAN
    from cp2image.models.vae import VAE, VAEplus

    return {"cp2image": CP2Image, "vae": VAE, "vaeplus": VAEplus, "lsgan": LSGAN}


def __getattr__(name: str) -> Any:
    """`MODEL_CLASSES` on first use (PEP 562), so that importing this module imports no torch."""
    if name == "MODEL_CLASSES":
        return model_classes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve(spec: "str | os.PathLike | ModelRef | None" = None) -> ResolvedModel:
    """The local folder holding the model's files; ModelUnavailable if it cannot be had."""
    ref = ModelRef.parse(spec)
    if ref.kind is ModelKind.HUB:
        return _hub_snapshot(ref)
    folder = bundled_model_dir(ref.name) if ref.kind is ModelKind.BUNDLED else Path(ref.name)
    run_model = folder / "model"  # a training run folder keeps its model here
    if ref.kind is ModelKind.LOCAL and not (folder / CONFIG_FILE).is_file() and (run_model / CONFIG_FILE).is_file():
        folder = run_model
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        if ref.kind is ModelKind.BUNDLED:
            raise FileNotFoundError(
                f"bundled model {ref.name!r} not found in assets/models (or the folder CP2IMAGE_ASSETS names); "
                f"set {ENV_VAR} to a model folder or Hub id, or train one with `cp2image train`"
            )
        missing = [n for n in REQUIRED_FILES if not (folder / n).is_file()]
        raise FileNotFoundError(f"{folder}: no {' or '.join(missing)}; pass a model folder or a training run folder")
    return ResolvedModel(ref, folder)


def model_kind(folder: Path) -> str:
    """The model class key from config.json: `provenance.model_kind` (written by the trainer),
    else `cp2image` when the config lists `feature_names`."""
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path.name} of the model is not valid JSON ({err})") from err
    kind = (config.get("provenance") or {}).get("model_kind") if isinstance(config, dict) else None
    if not kind and isinstance(config, dict) and "feature_names" in config:
        kind = "cp2image"
    if kind not in MODEL_KINDS:
        raise ValueError(
            f"cannot tell the model kind (provenance.model_kind={kind!r}); expected one of {sorted(MODEL_KINDS)}")
    return str(kind)


def load_resolved(resolved: ResolvedModel, *, kinds: Collection[str] = ("cp2image",)) -> LoadedModel:
    """Load a resolved folder strictly; errors name the model by its label, not by a server path."""
    start = time.perf_counter()
    try:
        kind = model_kind(resolved.folder)
        if kind not in kinds:
            raise ValueError(f"it is a {kind!r} model; this needs one of {sorted(kinds)}")
        model = model_classes()[kind].from_pretrained(resolved.folder)
    except ValueError as err:
        text = str(err).replace(f"{resolved.folder}{os.sep}", "").replace(str(resolved.folder), resolved.label)
        raise ValueError(f"{resolved.label} cannot be used: {text}") from err
    model.eval()
    return LoadedModel(model=model, ref=resolved.ref, folder=resolved.folder, commit=resolved.commit, kind=kind,
                       load_seconds=time.perf_counter() - start)


def load_bundled(name: str = BUNDLED_MODEL_NAME) -> LoadedModel:
    """A model shipped under assets/models/<name>."""
    return load_resolved(resolve(ModelRef.bundled(name)))


def load_model(spec: "str | os.PathLike | ModelRef | None" = None, *, fallback: bool = True,
               kinds: Collection[str] = ("cp2image",)) -> LoadedModel:
    """Load the model `spec` names (see `ModelRef.parse`).

    A Hub model that cannot be obtained (offline and not cached, unreachable, misspelt,
    missing files) is replaced by the bundled default when `fallback` is true, with a
    one-sentence `notice`; weights that exist but fail their checks always raise.
    """
    ref = ModelRef.parse(spec)
    try:
        return load_resolved(resolve(ref), kinds=kinds)
    except ModelUnavailable as err:
        if not fallback or ref == ModelRef.bundled():
            raise
        loaded = load_bundled()
        loaded.requested = ref
        loaded.notice = f"{err} Using the bundled {loaded.ref.name} model instead."
        log.warning(loaded.notice)
        return loaded


def load_or_default(spec: "str | os.PathLike | ModelRef | None" = None) -> LoadedModel:
    """For interactive use (the app): the requested model, or — if it cannot be loaded at all
    (bad files, missing folder, not a CP2Image model) — the default one with `problem` saying
    why. Errors of the default model itself propagate: there is nothing left to show."""
    try:
        return load_model(spec)
    except (ValueError, OSError) as err:
        try:
            requested = ModelRef.parse(spec)
        except (ValueError, OSError):
            requested = None
        if spec is None or requested == ModelRef.parse(None):
            raise
        loaded = load_model(None)
        loaded.requested = requested
        shown = requested.label if requested is not None else str(spec)
        loaded.problem = f"Could not load model '{shown}': {err} Showing the default model instead."
        log.warning(loaded.problem)
        return loaded


__all__ = ["ENV_VAR", "MODEL_CLASSES", "MODEL_KINDS", "LoadedModel", "ModelKind", "ModelRef", "ModelUnavailable", "ResolvedModel",
           "hub_cache_dir", "load_bundled", "load_model", "load_or_default", "load_resolved", "model_classes", "model_kind", "offline",
           "resolve"]

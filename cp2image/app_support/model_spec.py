"""Which model a user may ask the app to load (an allowlist, never a path).

The sidebar accepts only (a) the name of a model bundled under `assets/models/` or
(b) a Hugging Face Hub repository id (`org/name`, optionally `@revision`) that does not
also name a folder on the server (a local folder would win over the Hub). Local paths
typed into the page are refused: a hosted demo must not open arbitrary files on its
server. Operators who want local weights set `CP2IMAGE_MODEL` in the server's
environment instead. In hosted mode (`CP2IMAGE_HOSTED=1`) Hub ids are further limited
to those listed in `CP2IMAGE_ALLOWED_MODELS` (see `cp2image.hosting`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cp2image.assets import assets_dir
from cp2image.models.hub import ModelKind, ModelRef

# Hugging Face's own rules: 1-96 characters of [A-Za-z0-9._-], not starting or ending
# with '-' or '.', no '--' or '..', not ending in '.git'; here the `org/` part is required.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
HUB_ID_PATTERN = re.compile(rf"^{_PART}/{_PART}(?:@[A-Za-z0-9._-]{{1,64}})?$")  # optional @revision


@dataclass(frozen=True)
class ModelChoice:
    """A validated request: `ref` goes to `load_model` (None → the server's default)."""

    ref: ModelRef | None
    label: str  # what the page shows

    @property
    def spec(self) -> str | None:
        """The reference as text (`ModelRef.spec`), None for the default."""
        return None if self.ref is None else self.ref.spec

    @property
    def kind(self) -> str:
        """"default" | "bundled" | "hub"."""
        return "default" if self.ref is None else self.ref.kind.value


def bundled_model_names() -> list[str]:
    """Names of the model folders shipped under `assets/models/` (those with a config.json)."""
    root = assets_dir() / "models"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


def parse_model_choice(text: str | None, *, allowed_hub_ids: list[str] | None = None) -> ModelChoice:
    """Validate what a user typed in the model field.

    Empty → the default model. A bundled model's name → its folder. `org/name` → a Hub
    id (only one of `allowed_hub_ids` when that list is given, as in hosted mode).
    Anything else (paths, URLs, odd characters) → ValueError saying what is allowed.
    """
    value = (text or "").strip()
    if not value:
        return ModelChoice(ref=None, label="default")
    if len(value) > 200:
        raise ValueError("Model name is too long; enter a bundled model name or a Hub id like 'org/name'.")
    if value in bundled_model_names():
        ref = ModelRef.bundled(value)
        return ModelChoice(ref=ref, label=ref.label)
    if any(sep in value for sep in ("\\", "://", "~")) or value.startswith(("/", ".")):
        raise ValueError(
            f"'{value}' looks like a path or URL; the app loads only bundled models "
            f"({', '.join(bundled_model_names()) or 'none found'}) or Hub ids like 'org/name'. "
            "To serve local weights, set CP2IMAGE_MODEL on the server."
        )
    repo = value.split("@", 1)[0]
    if not HUB_ID_PATTERN.fullmatch(value) or "--" in repo or ".." in repo or repo.endswith(".git"):
        raise ValueError(
            f"'{value}' is not a Hugging Face Hub id; use 'org/name' with letters, digits, '-', '_' "
            "or '.' (no '--' or '..'), or the name of a bundled model."
        )
    if Path(value).expanduser().exists():
        # a local folder would win over the Hub, so an id that names a server path is refused
        raise ValueError(
            f"'{value}' names a folder on the server, not a Hub model; the app loads only bundled models "
            "or Hub ids. To serve local weights, set CP2IMAGE_MODEL on the server."
        )
    if allowed_hub_ids is not None and value not in allowed_hub_ids and repo not in allowed_hub_ids:
        raise ValueError(
            f"'{value}' is not one of the models this server offers "
            f"({', '.join(bundled_model_names() + list(allowed_hub_ids)) or 'none'})."
        )
    repo_id, _, revision = value.partition("@")
    ref = ModelRef.hub(repo_id, revision or None)
    assert ref.kind is ModelKind.HUB
    return ModelChoice(ref=ref, label=ref.label)

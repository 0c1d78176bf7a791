"""Which model a user may ask the hosted app to load (an allowlist, never a path).

The sidebar accepts only (a) the name of a model bundled under `assets/models/` or
(b) a Hugging Face Hub repository id (`org/name`, optionally `@revision`) that does not
also name a folder on the server (`load_model` tries local folders first). Local paths typed into the page are
refused: a hosted demo must not open arbitrary files on its server. Operators who
want local weights set `CP2IMAGE_MODEL` in the server's environment instead, which
`cp2image.models.hub.load_model` reads.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cp2image.assets import assets_dir

# Hugging Face's own rules: 1-96 characters of [A-Za-z0-9._-], not starting or ending
# with '-' or '.', no '--' or '..', not ending in '.git'; here the `org/` part is required.
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
HUB_ID_PATTERN = re.compile(rf"^{_PART}/{_PART}(?:@[A-Za-z0-9._-]{{1,64}})?$")  # optional @revision


@dataclass(frozen=True)
class ModelChoice:
    """A validated request: `spec` goes to `load_model`; `label` is what the page shows."""

    spec: str | None  # None → the default (CP2IMAGE_MODEL or the bundled weights)
    label: str
    kind: str  # "default" | "bundled" | "hub"


def bundled_model_names() -> list[str]:
    """Names of the model folders shipped under `assets/models/` (those with a config.json)."""
    root = assets_dir() / "models"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


def parse_model_choice(text: str | None) -> ModelChoice:
    """Validate what a user typed in the model field.

    Empty → the default model. A bundled model's name → its folder. `org/name` → a Hub
    id. Anything else (paths, URLs, odd characters) → ValueError saying what is allowed.
    """
    value = (text or "").strip()
    if not value:
        return ModelChoice(spec=None, label="default", kind="default")
    if len(value) > 200:
        raise ValueError("Model name is too long; enter a bundled model name or a Hub id like 'org/name'.")
    if value in bundled_model_names():
        return ModelChoice(spec=f"bundled:{value}", label=f"bundled: {value}", kind="bundled")
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
        # load_model tries a local folder before the Hub, so an id that names a server path is refused
        raise ValueError(
            f"'{value}' names a folder on the server, not a Hub model; the app loads only bundled models "
            "or Hub ids. To serve local weights, set CP2IMAGE_MODEL on the server."
        )
    return ModelChoice(spec=value, label=f"hub: {value}", kind="hub")

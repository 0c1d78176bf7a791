"""Read a model card (README.md with YAML front matter) and summarise a loaded model's config."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

MAX_CARD_BYTES = 1_000_000


def read_card(directory: str | Path) -> str | None:
    """The model folder's README.md as text, or None when there is none (or it is absurdly large)."""
    path = Path(directory) / "README.md"
    if not path.is_file() or path.stat().st_size > MAX_CARD_BYTES:
        return None
    return path.read_text(encoding="utf-8", errors="replace")


def card_sections(text: str) -> tuple[dict[str, Any], str]:
    """Split '---\\nyaml\\n---\\nbody' into (metadata, body); text without front matter → ({}, text)."""
    if not text.startswith("---"):
        return {}, text
    parts = text.split("\n---", 1)
    if len(parts) != 2:
        return {}, text
    try:
        meta = yaml.safe_load(parts[0][3:]) or {}
    except yaml.YAMLError:
        return {}, text
    body = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    return (meta if isinstance(meta, dict) else {}), body


def model_facts(model: Any) -> pd.DataFrame:
    """Two-column table (fact, value) of what a loaded model says about itself."""
    rows: list[tuple[str, str]] = [
        ("class", type(model).__name__),
        ("input features", str(len(getattr(model, "feature_names", [])))),
        ("image size", f"{getattr(model, 'image_size', '?')} px"),
        ("channels", ", ".join(map(str, getattr(model, "channels", []) or []))),
    ]
    try:
        n_params = sum(int(p.numel()) for p in model.parameters())
        rows.append(("parameters", f"{n_params:,}"))
    except AttributeError:
        pass
    config = getattr(model, "config", None)
    provenance = getattr(config, "provenance", None) if config is not None else None
    if isinstance(config, dict):
        provenance = config.get("provenance")
    if isinstance(provenance, dict):
        for key, value in provenance.items():
            rows.append((f"provenance: {key}", str(value)))
    names = list(getattr(model, "feature_names", []))
    if names:
        rows.append(("first features", ", ".join(names[:4]) + (" …" if len(names) > 4 else "")))
    return pd.DataFrame(rows, columns=["fact", "value"])

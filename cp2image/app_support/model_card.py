"""Read a model card (README.md with YAML front matter) and summarise a loaded model's config."""
from __future__ import annotations

import re
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


_IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)[^)]*\)")


REPO_ROOT = Path(__file__).resolve().parents[2]


def card_images(body: str, directory: str | Path, *, allowed_root: str | Path = REPO_ROOT) -> list[tuple[str, str | Path]]:
    """Split a card body at its Markdown images: [("text", chunk), ("image", path or URL), ...].

    Relative image links are resolved against the card's folder and kept only when they
    point to an existing file inside `allowed_root`, the repository (an allowlisted place, never a
    user-typed path); other images become their alt text. Streamlit cannot show a
    relative Markdown image, so the page draws these with st.image.
    """
    root = Path(directory).resolve()
    repo = Path(allowed_root).resolve()
    parts: list[tuple[str, str | Path]] = []
    last = 0
    for match in _IMAGE_LINK.finditer(body):
        parts.append(("text", body[last:match.start()]))
        alt, target = match.group(1), match.group(2)
        path = (root / target).resolve()
        if path.is_file() and path.is_relative_to(repo) and path.suffix.lower() in {".png", ".jpg", ".jpeg", ".svg"}:
            parts.append(("image", path))
            parts.append(("caption", alt))
        else:
            parts.append(("text", f"*[figure: {alt}]*"))
        last = match.end()
    parts.append(("text", body[last:]))
    return [(kind, value) for kind, value in parts if not (kind == "text" and not str(value).strip())]


def figure_png(path: str | Path, *, max_width: int = 1400) -> bytes:
    """A card figure as PNG bytes no wider than `max_width` (so the page need not resize it every run)."""
    import io

    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB") if image.mode not in ("RGB", "RGBA") else image.copy()
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


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

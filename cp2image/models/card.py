"""A model card: read the README.md (YAML front matter) beside the weights, its figures, and a plain summary for biologists."""
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


# -- what a biologist reads first ---------------------------------------------------------------
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.+@-]+/)*[\w.+@-]+")
MODULE_WORDS = {"AreaShape": "shape and size", "Intensity": "stain intensity", "Texture": "texture",
                "Granularity": "granularity", "RadialDistribution": "radial stain distribution",
                "Correlation": "co-localisation of stains"}


def hide_server_paths(text: str) -> str:
    """Replace absolute paths (the training machine's folders) by `…/<last folder>/<name>`.

    A model card may record the absolute run folder it was trained in; a hosted page must not
    show the server's folders, and the last two parts still say which run it was.
    """
    def short(match: re.Match) -> str:
        parts = match.group(0).strip("/").split("/")
        return "…/" + "/".join(parts[-2:]) if len(parts) > 1 else match.group(0)

    return _ABSOLUTE_PATH.sub(short, str(text))


def _lower_first(text: str) -> str:
    """'Nucleus DNA area' → 'nucleus DNA area' (acronyms keep their capitals)."""
    return text[:1].lower() + text[1:]


def _origin(provenance: dict) -> str:
    from cp2image.data.provenance import cell_origin

    dataset = provenance.get("dataset_provenance")
    return cell_origin(dataset if isinstance(dataset, dict) else None)


def plain_summary(model: Any, correlation: pd.DataFrame | None = None, *, n_cells: int | None = None) -> list[str]:
    """Five plain-language lines for biologists: what it does, trained on, how faithful, weakest, use for.

    Built from the model's config (size, features, training provenance) and, when given,
    its evaluation's per-feature correlation table (feature, pearson_r; `n_cells` held-out
    cells). Nothing is copied from the card's prose, so it cannot drift from the weights.
    """
    from cp2image.analysis.feature_labels import readable_name

    config = getattr(model, "config", None)
    provenance = getattr(config, "provenance", None) or {}
    size = getattr(model, "image_size", "?")
    p = len(getattr(model, "feature_names", []))
    lines = [f"**What it does:** draws a {size}×{size}-pixel image of one cell in three stains (DNA, β-tubulin, "
             f"F-actin) from that cell's {p} CellProfiler measurements alone."]
    origin = _origin(provenance)
    cells = provenance.get("training_cells") if isinstance(provenance.get("training_cells"), dict) else {}
    kind = {"simulated": "simulated cells from the virtual BBBC021 screen, rendered rather than imaged",
            "measured": "real cells from microscopy (BBBC021 crops)"}.get(origin, "cells of unrecorded origin")
    amount = f"{cells['cells']:,} " if cells.get("cells") else ""
    scope = ", ".join(f"{cells[k]} {k}" for k in ("compounds", "plates") if cells.get(k))
    total = provenance.get("total_steps", provenance.get("steps"))  # a fine-tune counts the steps it started from
    steps = f", {total:,} training steps" if isinstance(total, int) else ""
    lines.append(f"**Trained on:** {amount}{kind}{f' ({scope})' if scope else ''}{steps}.")
    r = None if correlation is None else correlation.assign(
        pearson_r=pd.to_numeric(correlation["pearson_r"], errors="coerce")).dropna(subset=["pearson_r"])
    if r is not None and len(r):
        share = 100 * float((r["pearson_r"] > 0.5).mean())
        best = r.sort_values("pearson_r", ascending=False).head(2)
        names = " and ".join(f"{_lower_first(readable_name(f))} (r {v:.2f})"
                             for f, v in zip(best["feature"], best["pearson_r"]))
        held = f"{n_cells:,} cells it never saw" if n_cells else "held-out cells"
        lines.append(f"**How faithful:** on {held}, {share:.0f}% of the measurements taken on its images follow the "
                     f"original cell's (Pearson r > 0.5; the paper reports over 30% on real BBBC021). Best kept: {names}.")
        modules = r["feature"].str.split("_").str[1]
        by_module = r.groupby(modules)["pearson_r"].median().sort_values()
        weakest = by_module.index[0]
        lines.append(f"**Weakest:** {MODULE_WORDS.get(weakest, weakest)} features (median r {by_module.iloc[0]:.2f}); "
                     "the Correlation report lists every feature.")
    else:
        lines.append("**How faithful:** no evaluation is stored beside these weights; run `cp2image evaluate` to see "
                     "which features its images preserve.")
        lines.append("**Weakest:** unknown until evaluated.")
    caution = " Because it learnt from simulated cells, its images show the simulator's biology, not MCF-7 cells'." \
        if origin == "simulated" else ""
    lines.append("**Use it for:** seeing what a profile, or a change in one feature, looks like as a cell; not as "
                 f"evidence on its own about real cells.{caution}")
    return lines

"""Repository cards for the Hub, checked offline with huggingface_hub's own card classes.

The Hub reads a card's YAML front matter (license, tags, library, SDK…) to index and
render the repo. `ModelCard`/`DatasetCard`/`SpaceCard` parse it exactly as the Hub's
client does; the Hub's server-side validator (`RepoCard.validate`) needs a network, so
here we check offline what can be checked: the block exists, parses into the card-data
class without errors, and carries the fields the Hub needs to list the repo.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, SpaceCard

_LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")  # Hub license ids: mit, apache-2.0, cc-by-4.0, other…
_CARD_CLASSES = {"model": ModelCard, "dataset": DatasetCard, "space": SpaceCard}


class CardError(ValueError):
    """A card whose front matter the Hub would reject or mis-read."""


def check_card(text: str, *, repo_type: str = "model", where: str = "README.md") -> Any:
    """Parse `text` as a `repo_type` card and return it; CardError listing every problem."""
    if not text.startswith("---\n"):
        raise CardError(f"{where}: no YAML front matter (the card must start with a '---' line)")
    try:
        card = _CARD_CLASSES[repo_type](text, ignore_metadata_errors=False)
    except ValueError as err:
        raise CardError(f"{where}: front matter is not valid card metadata ({err})") from err
    data = card.data.to_dict()
    problems = []
    license_ = data.get("license")
    if not isinstance(license_, str) or not _LICENSE.fullmatch(license_):
        problems.append(f"license must be a Hub license id such as 'mit' or 'other' (got {license_!r})")
    tags = data.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        problems.append(f"tags must be a list of strings (got {tags!r})")
    if repo_type == "model" and not isinstance(data.get("library_name"), str):
        problems.append("library_name is missing (the Hub shows it as the model's library)")
    if repo_type == "space":
        if data.get("sdk") not in ("docker", "streamlit", "gradio", "static"):
            problems.append(f"sdk must be docker, streamlit, gradio or static (got {data.get('sdk')!r})")
        if data.get("sdk") == "docker" and not isinstance(data.get("app_port"), int):
            problems.append("a Docker Space needs app_port (the port the app listens on)")
        if data.get("sdk") == "streamlit" and not data.get("app_file"):
            problems.append("a Streamlit Space needs app_file")
    if problems:
        raise CardError(f"{where}: " + "; ".join(problems))
    return card


def check_card_file(path: str | Path, *, repo_type: str = "model") -> Any:
    path = Path(path)
    if not path.is_file():
        raise CardError(f"{path.name} is missing: a Hub repo needs a card (README.md with YAML front matter)")
    return check_card(path.read_text(encoding="utf-8"), repo_type=repo_type, where=path.name)


def _size_category(n: int) -> str:
    """The Hub's size_categories bucket for n rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "n>10M"


def dataset_card(folder: str | Path, *, license_: str = "other", repo_id: str | None = None) -> str:
    """A dataset card for a cp2image dataset folder, written from its dataset.json (not from guesses)."""
    folder = Path(folder)
    meta = json.loads((folder / "dataset.json").read_text())
    provenance = meta.get("provenance") or {}
    n_cells = int(provenance.get("n_cells") or 0)
    if not n_cells:
        import pyarrow.parquet as pq

        n_cells = pq.ParquetFile(folder / "cells.parquet").metadata.num_rows
    simulated = bool(provenance.get("simulated")) or "simulate" in str(provenance.get("source", ""))
    tags = ["cell-painting", "cellprofiler", "microscopy", "single-cell", "cp2image"]
    tags.append("simulated" if simulated else "bbbc021")
    data = DatasetCardData(license=license_, pretty_name=folder.name, size_categories=[_size_category(n_cells)],
                           task_categories=["image-to-image"], tags=tags)
    channels = ", ".join(meta.get("channels") or [])
    features = meta.get("features") or []
    name = repo_id or folder.name
    origin = ("**Simulated** cells from the cp2image virtual BBBC021 screen, not microscopy." if simulated
              else "Cells measured on microscopy images.")
    body = f"""
# {folder.name}

A cp2image single-cell dataset: {n_cells:,} cells, each a {meta.get('crop_size', '?')}×{meta.get('crop_size', '?')} px
crop in {channels} with {len(features)} CellProfiler-named features.
{origin}

- Pixel size: {meta.get('pixel_size_um', 'not recorded')} µm
- Source: {provenance.get('source', 'not recorded')}

## Files

- `images.npy` or `images.npz` — uint8 (N, 3, H, W), channel order {channels}
- `cells.parquet` — one row per cell: `Metadata_*` columns and the features, row i ↔ image i
- `dataset.json` — channels, crop size, pixel size, feature list, provenance

## Use

```bash
hf download {name} --repo-type dataset --local-dir data/{folder.name}
cp2image train --data data/{folder.name} --model cp2image --out runs/{folder.name}
```
"""
    card = DatasetCard.from_template(data, template_str="---\n{{ card_data }}\n---\n" + body)
    return str(card)

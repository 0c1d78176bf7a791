"""How pages caption a dataset's crops, from its provenance (`cp2image.data.provenance`).

"simulated cell", "real cell" or "dataset cell" when the origin is not recorded, so a
crop from the virtual BBBC021 is never captioned "real cell".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cp2image.data.provenance import Origin, cell_origin

@dataclass(frozen=True)
class CropWords:
    """The words pages use for a dataset's crops."""

    origin: Origin
    cell: str  # caption under one crop: "simulated cell" / "real cell" / "dataset cell"
    cells: str  # plural, for headings: "simulated cells"
    adjective: str  # before a group: "simulated" / "real" / "" (e.g. "simulated DMSO")
    summary: str  # one sentence for Home


def crop_words(provenance: dict[str, Any] | None) -> CropWords:
    """Captions and a Home sentence for the crops of a dataset with this provenance."""
    origin = cell_origin(provenance)
    source = str((provenance or {}).get("source") or "not recorded")
    if origin == "simulated":
        return CropWords(origin, "simulated cell", "simulated cells", "simulated",
                         "Simulated cells: crops rendered by cp2image's virtual BBBC021 screen, not microscopy.")
    if origin == "measured":
        return CropWords(origin, "real cell", "real cells", "real",
                         f"Real cells: crops cut from microscopy images by `cp2image ingest` ({source}).")
    return CropWords(origin, "dataset cell", "dataset cells", "",
                     f"Origin of the crops not recorded (provenance source: {source}); treat them as unverified.")

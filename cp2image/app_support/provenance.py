"""Where a dataset's crops came from — simulated or measured — read from its provenance.

Every crop the app shows beside a generated image is captioned from this, so a crop
from the virtual BBBC021 is never called a "real cell". The rule reads
`dataset.json["provenance"]` as the writers record it:

- `"simulated": true/false`, if a writer states it, wins;
- `source` "cp2image simulate ..." (cp2image.data.simulate) → simulated;
- `source` "cellprofiler-fields", "crops-npz", "crops-folder" (cp2image ingest) → measured;
  "crops-combined" → measured when every input is;
- anything else (no provenance, an unknown writer) → unknown, and captions say "dataset
  cell" rather than guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Origin = Literal["simulated", "measured", "unknown"]

MEASURED_SOURCES = frozenset({"cellprofiler-fields", "crops-npz", "crops-folder"})
SIMULATED_PREFIX = "cp2image simulate"


def cell_origin(provenance: dict[str, Any] | None) -> Origin:
    """Simulated, measured or unknown, from a dataset's provenance dict (see the module docstring)."""
    if not isinstance(provenance, dict):
        return "unknown"
    stated = provenance.get("simulated")
    if isinstance(stated, bool):
        return "simulated" if stated else "measured"
    source = str(provenance.get("source") or "")
    if source.startswith(SIMULATED_PREFIX):
        return "simulated"
    if source in MEASURED_SOURCES:
        return "measured"
    if source == "crops-combined":
        inputs = provenance.get("inputs") or []
        origins = {cell_origin(p) for p in inputs}
        return origins.pop() if len(origins) == 1 else "unknown"
    return "unknown"


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

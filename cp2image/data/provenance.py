"""Where a dataset's crops came from — simulated or measured — read from its provenance.

The app captions every crop from this (so a crop from the virtual BBBC021 is never
called a "real cell") and the model card says what its weights learnt from. The rule reads
`dataset.json["provenance"]` as the writers record it:

- `"simulated": true/false`, if a writer states it, wins;
- `source` "cp2image simulate ..." (cp2image.data.simulate) → simulated;
- `source` "cellprofiler-fields", "crops-npz", "crops-folder" (cp2image ingest) → measured;
  "crops-combined" → measured when every input is;
- anything else (no provenance, an unknown writer) → unknown, and captions say "dataset
  cell" rather than guess.
"""
from __future__ import annotations

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

"""Which columns are features and which are metadata, by CellProfiler prefix.

Same convention as pycytominer: features start with a compartment name
(`Cells_`, `Nuclei_`, `Cytoplasm_`), metadata with `Metadata_`. Anything else
(e.g. the simulator's `Truth_*` ground truth) is neither and is left alone.
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

FEATURE_PREFIXES: tuple[str, ...] = ("Cells_", "Nuclei_", "Cytoplasm_")
METADATA_PREFIX = "Metadata_"

# The metadata columns the pipeline reads and writes, named once (the dataset contract).
PLATE = "Metadata_Plate"
WELL = "Metadata_Well"
SITE = "Metadata_Site"
COMPOUND = "Metadata_Compound"
CONCENTRATION = "Metadata_Concentration"
MOA = "Metadata_MoA"
SPLIT = "Metadata_Split"  # "train" / "val" / "test" groups, assigned at ingest
REPLICATE = "Metadata_Replicate"
REPLICATE_ID = "Metadata_ReplicateID"  # "<plate>/<well>": the replicate well
FAILED_COLUMN = "Metadata_Segmentation_Failed"  # True where a crop could not be segmented (NaN features)


def _columns(frame_or_columns: pd.DataFrame | Iterable[str]) -> list[str]:
    if isinstance(frame_or_columns, pd.DataFrame):
        return [str(c) for c in frame_or_columns.columns]
    return [str(c) for c in frame_or_columns]


def feature_columns(frame_or_columns: pd.DataFrame | Iterable[str]) -> list[str]:
    """CellProfiler feature columns, in their given order."""
    return [c for c in _columns(frame_or_columns) if c.startswith(FEATURE_PREFIXES)]


def metadata_columns(frame_or_columns: pd.DataFrame | Iterable[str]) -> list[str]:
    """`Metadata_*` columns, in their given order."""
    return [c for c in _columns(frame_or_columns) if c.startswith(METADATA_PREFIX)]

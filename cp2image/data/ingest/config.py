"""Options of the two ingest commands, as dataclasses (defaults reproduce the original work's crops)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cp2image.channels import CHANNELS, CROP_SIZE
from cp2image.data.ingest.channel_order import parse_channel_order
from cp2image.data.ingest.splits import SplitBy
from cp2image.data.intensity import IntensityConfig

Scope = Literal["field", "crop"]


@dataclass
class CropIngestConfig:
    """Options of `ingest_crops`."""

    intensity: IntensityConfig = field(default_factory=IntensityConfig)  # per-crop max or percentile
    channel_order: tuple[str, ...] = CHANNELS  # the input's channels in stored order (names, see CHANNEL_ALIASES)
    split_by: SplitBy = "plate"  # Metadata_Split groups: "plate" (default here) or "well"
    seed: int = 0  # split shuffling and --subset sampling
    subset: int | None = None  # keep this many crops, sampled with `seed` (quick runs, tests)
    moa_only: bool = False  # keep only crops with an MoA annotation
    measure: bool = True  # measure CellProfiler-style features on the uint8 crops
    drop_failed: bool = False  # drop crops whose segmentation failed (else kept with NaN features + flag)
    n_jobs: int | None = None  # worker processes for measure (None = in process, -1 = all cores)
    batch_size: int = 512  # crops normalised, measured and written at a time
    progress: bool = False
    overwrite: bool = False
    restart: bool = False  # discard the unfinished work of a killed run instead of resuming it

    def __post_init__(self) -> None:
        self.channel_order = parse_channel_order(self.channel_order)
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"subset must be a positive number of crops, got {self.subset}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")


@dataclass
class FieldIngestConfig:
    """Options of `ingest_fields` (defaults reproduce the original work's crops)."""

    crop_size: int = CROP_SIZE  # crop edge in pixels, centred on the nucleus
    intensity: IntensityConfig = field(default_factory=IntensityConfig)  # max or percentile
    scope: Scope = "field"  # intensity limits per field of view or per crop
    moa_only: bool = False  # keep only treatments the MoA table annotates
    split_by: SplitBy = "well"  # Metadata_Split groups: "well" or "plate"
    seed: int = 0  # split shuffling
    object_name: str | None = None  # prefix for unprefixed measurement columns
    features: Literal["carried", "measured"] = "carried"  # CellProfiler's columns, or measure() on the crops
    n_jobs: int | None = None  # worker processes for measure() (features="measured")
    drop_failed: bool = False  # features="measured": drop cells whose segmentation failed
    strict: bool = False  # without objects: a field missing some channel files is an error (else skipped, named)
    chunk_rows: int = 20_000  # object rows read per chunk
    progress: bool = False  # tqdm bar over object rows
    overwrite: bool = False
    restart: bool = False  # discard the unfinished work of a killed run instead of resuming it

    def __post_init__(self) -> None:
        if self.crop_size < 4:
            raise ValueError(f"crop_size must be at least 4 pixels, got {self.crop_size}")
        if self.scope not in ("field", "crop"):
            raise ValueError(f"scope must be 'field' or 'crop', got {self.scope!r}")
        if self.features not in ("carried", "measured"):
            raise ValueError(f"features must be 'carried' or 'measured', got {self.features!r}")
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be positive, got {self.chunk_rows}")

"""Typed evaluation metrics, and their one serialised form (metrics.json).

Each section of metrics.json is a dataclass here; `EvaluationMetrics.to_dict()` writes
the nested dictionary the report, the app and Table 1 read, key for key. Sections
whose numbers come from another module (the correlation summary, the MoA fidelity
summary) carry that module's summary dictionary unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

NOT_COMPARABLE = (
    "not comparable with Inception FID (different feature space); compare models only "
    "within this column, on the same dataset, split and encoder"
)
INCEPTION_NOTE = ("Inception-v3 pool features (2048-d); equality of the weights file with "
                  "the standard 2015-12-05 FID weights is not verified here")


def jsonable(value: Any) -> Any:
    """`value` with numpy scalars/arrays and paths made JSON-native and non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass
class Distances:
    """Fréchet distance and KID between real and generated cells in one feature space."""

    frechet: float | None
    kid: float
    kid_std: float
    kid_subset_size: int
    n_real: int
    n_generated: int
    dim: int
    frechet_error: str | None = None  # why the Fréchet distance is None (e.g. a complex matrix root)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frechet_error": self.frechet_error} if self.frechet_error is not None else {}
        return {**out, "frechet": self.frechet, "kid": self.kid, "kid_std": self.kid_std,
                "kid_subset_size": self.kid_subset_size, "n_real": self.n_real, "n_generated": self.n_generated,
                "dim": self.dim}


@dataclass
class InceptionMetrics:
    """FID/KID on Inception pool features; unavailable without user-supplied weights."""

    distances: Distances | None  # None: no weights (see reason)
    weights: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = self.distances
        if d is None:
            return {"available": False, "fid": None, "kid": None, "reason": self.reason}
        return {"available": True, "fid": d.frechet, "kid": d.kid, "kid_std": d.kid_std,
                "kid_subset_size": d.kid_subset_size, "n_real": d.n_real, "n_generated": d.n_generated,
                "weights": self.weights, "note": INCEPTION_NOTE}


@dataclass
class CellProfilerSpace:
    """Distances in standardised CellProfiler feature space, with the cells that could not be measured."""

    n_features: int
    real_dropped: int
    generated_dropped: int
    generated_dropped_fraction: float
    distances: Distances | None  # None: fewer than 2 generated crops measurable (see reason)
    reason: str = ""
    warning: str = ""  # e.g. rank-deficient covariances

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_features": self.n_features, "real_dropped": self.real_dropped,
                               "generated_dropped": self.generated_dropped,
                               "generated_dropped_fraction": self.generated_dropped_fraction, "note": NOT_COMPARABLE}
        if self.distances is None:
            return {**out, "frechet": None, "kid": None, "reason": self.reason}
        out.update(self.distances.to_dict())
        return {**out, "warning": self.warning} if self.warning else out


@dataclass
class EncoderSpace:
    """Distances in the domain encoder's embedding; `encoder` says how it was made, or why there is none."""

    distances: Distances | None
    encoder: str

    def to_dict(self) -> dict[str, Any]:
        if self.distances is None:
            return {"frechet": None, "kid": None, "reason": self.encoder}
        return {**self.distances.to_dict(), "encoder": self.encoder, "note": NOT_COMPARABLE}


@dataclass
class Section:
    """A section that may be unavailable: its numbers (another module's summary) or the reason."""

    available: bool
    values: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def get(self, key: str) -> Any:
        """A number of the section, None when unavailable or absent."""
        return self.values.get(key) if self.available else None

    def to_dict(self) -> dict[str, Any]:
        return {"available": True, **self.values} if self.available else {"available": False, "reason": self.reason}


@dataclass
class ModelInfo:
    type: str
    mode: str  # "conditional", "reconstruction" or "unconditional"
    paired: bool  # generated image i corresponds to held-out cell i
    source: str


@dataclass
class DatasetInfo:
    path: str
    split: str
    n_heldout: int
    n_excluded_nonfinite: int
    n_evaluated: int


@dataclass
class Headline:
    """The flat numbers a results table shows (None where not available)."""

    fid_inception: float | None
    kid_inception: float | None
    frechet_cellprofiler: float | None
    kid_cellprofiler: float | None
    frechet_encoder: float | None
    kid_encoder: float | None
    generated_unmeasurable_fraction: float | None
    fraction_r_above_half: float | None
    moa_accuracy_generated: float | None
    moa_accuracy_real: float | None
    moa_fidelity_ratio: float | None
    moa_fidelity_balanced_ratio: float | None

    def to_dict(self) -> dict[str, float | None]:
        out = dict(self.__dict__)
        out = {("fraction_r_above_0.5" if k == "fraction_r_above_half" else k): v for k, v in out.items()}
        return out


@dataclass
class EvaluationMetrics:
    """Everything metrics.json holds, typed."""

    created_utc: str
    model: ModelInfo
    dataset: DatasetInfo
    inception: InceptionMetrics
    cellprofiler_space: CellProfilerSpace
    encoder_space: EncoderSpace
    correlation: Section  # values: CorrelationReport.summary()
    moa_fidelity: Section  # values: label_column, grouping, MoAFidelityResult.summary()
    moa_signature: Section  # values: control, per_class
    segmentation_failed_fraction: dict[str, float | None]  # "real" / "generated"
    config: dict[str, Any]
    timings_s: dict[str, float]
    image_quality: Section | None = None  # values: image_quality.quality_summary() (edge frame, streaks, puncta)

    @property
    def headline(self) -> Headline:
        inc, cp, enc = self.inception.distances, self.cellprofiler_space, self.encoder_space.distances
        return Headline(
            fid_inception=inc.frechet if inc else None,
            kid_inception=inc.kid if inc else None,
            frechet_cellprofiler=cp.distances.frechet if cp.distances else None,
            kid_cellprofiler=cp.distances.kid if cp.distances else None,
            frechet_encoder=enc.frechet if enc else None,
            kid_encoder=enc.kid if enc else None,
            generated_unmeasurable_fraction=cp.generated_dropped_fraction,
            fraction_r_above_half=self.correlation.get("fraction_above"),
            moa_accuracy_generated=self.moa_fidelity.get("generated_accuracy"),
            moa_accuracy_real=self.moa_fidelity.get("real_accuracy"),
            moa_fidelity_ratio=self.moa_fidelity.get("ratio"),
            moa_fidelity_balanced_ratio=self.moa_fidelity.get("balanced_ratio"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The content of metrics.json (before `jsonable`)."""
        return {
            "created_utc": self.created_utc,
            "model": dict(self.model.__dict__),
            "dataset": dict(self.dataset.__dict__),
            "inception": self.inception.to_dict(),
            "cellprofiler_space": self.cellprofiler_space.to_dict(),
            "encoder_space": self.encoder_space.to_dict(),
            "correlation": self.correlation.to_dict(),
            "moa_fidelity": self.moa_fidelity.to_dict(),
            "moa_signature": self.moa_signature.to_dict(),
            "segmentation_failed_fraction": dict(self.segmentation_failed_fraction),
            **({"image_quality": self.image_quality.to_dict()} if self.image_quality is not None else {}),
            "config": self.config,
            "timings_s": self.timings_s,
            "headline": self.headline.to_dict(),
        }

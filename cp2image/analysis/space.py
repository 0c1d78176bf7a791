"""The feature space the analyses work in: names, the model's feature list, normalisation.

Analyses take *raw* CellProfiler profiles (what a user has and what `model.generate`
accepts, matched by column name) and compute distances/cosines in a *normalised*
space where every feature has comparable scale. `FeatureSpace` is that affine map,
x_norm = (x - center) / scale, taken from the model when it carries normalisation
statistics and otherwise fitted on the control cells (robust: median and
1.4826·MAD, the pycytominer "robustize_mad" convention, per feature).
"""
from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from cp2image.features.robust import robust_center_scale

log = logging.getLogger(__name__)


@runtime_checkable
class ProfileModel(Protocol):
    """What the analyses need from a model: its feature list and a generator."""

    feature_names: list[str]

    def generate(self, frame_or_array: Any, *, batch_size: int = 256) -> np.ndarray: ...


def resolve_feature(name: str, feature_names: Sequence[str]) -> str:
    """The model feature called `name` (exact, else case-insensitive), or a ValueError with close names."""
    names = list(feature_names)
    if name in names:
        return name
    lowered = {n.lower(): n for n in names}
    if str(name).lower() in lowered:
        return lowered[str(name).lower()]
    close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown feature {name!r}: the model has no such feature ({len(names)} features).{hint}")


def missing_columns(frame_or_series: pd.DataFrame | pd.Series, feature_names: Sequence[str]) -> list[str]:
    """Model features absent from a frame's columns (or a series' index), in model order."""
    have = set(frame_or_series.columns if isinstance(frame_or_series, pd.DataFrame) else frame_or_series.index)
    return [f for f in feature_names if f not in have]


def require_columns(frame_or_series: pd.DataFrame | pd.Series, feature_names: Sequence[str], *, what: str) -> None:
    """ValueError naming the first missing model features of `what`."""
    missing = missing_columns(frame_or_series, feature_names)
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise ValueError(f"{what} lacks {len(missing)} of the model's {len(feature_names)} features: {shown}")


def profile_matrix(frame: pd.DataFrame, feature_names: Sequence[str], *, what: str = "cells") -> np.ndarray:
    """(N, p) float64 of the model features, selected by name."""
    require_columns(frame, feature_names, what=what)
    return frame.loc[:, list(feature_names)].to_numpy(dtype=np.float64)


@dataclass(frozen=True)
class FeatureSpace:
    """An affine normalisation x_norm = (x - center) / scale over named features."""

    feature_names: tuple[str, ...]
    center: np.ndarray  # (p,)
    scale: np.ndarray  # (p,), strictly positive
    source: str  # human-readable provenance, e.g. "model" or "control cells (median/MAD)"

    def transform(self, values: pd.DataFrame | pd.Series | np.ndarray) -> np.ndarray:
        """Normalised values: (N, p) for a frame/2-D array, (p,) for a series/1-D array."""
        if isinstance(values, pd.DataFrame):
            arr = profile_matrix(values, self.feature_names)
        elif isinstance(values, pd.Series):
            require_columns(values, self.feature_names, what="profile")
            arr = values.loc[list(self.feature_names)].to_numpy(dtype=np.float64)
        else:
            arr = np.asarray(values, dtype=np.float64)
        return (arr - self.center) / self.scale

    def inverse(self, normalised: np.ndarray) -> np.ndarray:
        """Raw values from normalised ones (inverse of `transform`)."""
        return np.asarray(normalised, dtype=np.float64) * self.scale + self.center

    @classmethod
    def robust(cls, reference: pd.DataFrame, feature_names: Sequence[str], *, source: str) -> "FeatureSpace":
        """Median / (1.4826·MAD) per feature over `reference`; falls back to SD, then 1, for constant features."""
        x = profile_matrix(reference, feature_names, what="reference cells")
        if x.shape[0] == 0:
            raise ValueError("cannot fit a normalisation on zero reference cells")
        center, scale = robust_center_scale(x)
        sd = np.nanstd(x, axis=0)
        scale = np.where(scale > 1e-12, scale, sd)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        center = np.where(np.isfinite(center), center, 0.0)
        return cls(tuple(feature_names), center, scale, source)


def model_feature_space(model: Any) -> FeatureSpace | None:
    """The standardisation the model applies before its generator, or None if it exposes none.

    Asks the model for its `feature_statistics` (CP2Image: names, mean, scale in model
    order); a model without them falls back to a space fitted on control cells.
    """
    stats = getattr(model, "feature_statistics", None)  # optional part of the ProfileModel protocol
    if stats is None:
        return None
    names = list(stats.names)
    center = np.asarray(stats.mean, dtype=np.float64).reshape(-1)
    scale = np.asarray(stats.scale, dtype=np.float64).reshape(-1)
    if center.shape != (len(names),) or scale.shape != (len(names),):
        log.warning("model normalisation has shape %s/%s for %d features; ignoring it", center.shape, scale.shape, len(names))
        return None
    scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
    return FeatureSpace(tuple(names), center, scale, "model normalisation (training mean/SD)")


def feature_space(model: Any, control_cells: pd.DataFrame | None) -> FeatureSpace:
    """The model's normalisation if it has one, else robust statistics of the control cells."""
    space = model_feature_space(model)
    if space is not None:
        return space
    if control_cells is None or len(control_cells) == 0:
        raise ValueError(
            "the model exposes no normalisation statistics and no control cells were given to fit one; "
            "pass reference cells (e.g. the DMSO wells of your dataset)"
        )
    return FeatureSpace.robust(control_cells, list(model.feature_names), source="control cells (median/1.4826·MAD)")


def drawn(model: "ProfileModel", refine: bool = False) -> dict[str, bool]:
    """`generate` keyword arguments for strips of related profiles (MoA interpolation, the PCA line).

    Why: critic refinement optimises each image's input on its own, which adds step-to-step jitter
    along a strip (measured on sweeps, docs/feature-control.md round 4), so strips show the generator
    as drawn unless `refine=True`. Only models with a critic take the argument.
    """
    return {"refine": refine} if getattr(model, "can_refine", False) else {}

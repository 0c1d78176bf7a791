"""The valid range of a CellProfiler feature, so a sweep never asks for an impossible cell.

A ±2 SD sweep of a skewed feature can ask for a negative cell area, an intensity
above 1 or a value far beyond any cell the model was trained on. The domain of a
feature is the intersection of

1. its **physical bounds**, read from the measurement's name (`PHYSICAL_BOUNDS`):
   areas, lengths, counts, textures' variances ≥ 0; mean/median/quartile/min/max
   intensities, fractions, solidity, eccentricity in [0, 1]; correlations in
   [−1, 1]; unknown features are unbounded here; and
2. the **reference cells' range widened by a margin**: [lo − m·(hi − lo),
   hi + m·(hi − lo)], where lo and hi are the 0.5th and 99.5th percentiles of the
   reference cells (`RANGE_QUANTILES`: robust to the odd mis-segmented cell, whose
   area of 6 px would otherwise set the floor) and m = `DEFAULT_MARGIN` (0.1), i.e.
   10 % of that range beyond it.

Angular features (`CIRCULAR_PERIODS`, AreaShape orientation in degrees) are not
clipped: they live on their period, so a request is wrapped onto it
(`wrap_angle`) and compared with the measurement modulo that period.

A model has a narrower range of its own: it standardises each feature with its training
mean and SD and clips the result to ±`clip_sigma` (10 SD), so it draws a cell further
out at the capped value. `beyond_training_range` says which features of a profile are
there and how far (the model's own warning names only a count and three names).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from cp2image.models.cp2image import CP2Image

DEFAULT_MARGIN = 0.1
"""Fraction of the reference cells' range allowed beyond it."""

RANGE_QUANTILES = (0.005, 0.995)
"""The reference cells' range: these quantiles, not min/max, so single outliers do not set it."""

CIRCULAR_PERIODS: dict[str, float] = {"AreaShape_Orientation": 180.0}
"""Features that are axial angles (degrees, CellProfiler range [−90, 90)): suffix → period."""

_INF = math.inf
PHYSICAL_BOUNDS: tuple[tuple[str, tuple[float, float]], ...] = (
    # (substring of the measurement name, (lower, upper)); the first match wins, so the
    # more specific names come first.
    ("Intensity_IntegratedIntensity", (0.0, _INF)),  # sum of [0, 1] pixels: any non-negative value
    ("Intensity_MassDisplacement", (0.0, _INF)),  # a distance in pixels
    ("Intensity_StdIntensity", (0.0, 0.5)),  # SD of values in [0, 1] is at most 0.5
    ("Intensity_MADIntensity", (0.0, 0.5)),
    ("Intensity_", (0.0, 1.0)),  # mean/median/min/max/quartile intensities of [0, 1] images
    ("AreaShape_EulerNumber", (-_INF, _INF)),  # components − holes: any integer
    ("AreaShape_Eccentricity", (0.0, 1.0)),
    ("AreaShape_Solidity", (0.0, 1.0)),
    ("AreaShape_Extent", (0.0, 1.0)),
    ("AreaShape_Zernike", (0.0, 1.0)),  # normalised Zernike magnitudes
    ("AreaShape_", (0.0, _INF)),  # areas, lengths, radii, perimeter, compactness, form factor
    ("Correlation_Correlation", (-1.0, 1.0)),
    ("Correlation_Manders", (0.0, 1.0)),
    ("Correlation_Overlap", (0.0, 1.0)),
    ("Correlation_RWC", (0.0, 1.0)),
    ("Correlation_Costes", (0.0, 1.0)),
    ("Correlation_K", (0.0, _INF)),
    ("Texture_Correlation", (-1.0, 1.0)),
    ("Texture_InfoMeas1", (-1.0, 0.0)),
    ("Texture_InfoMeas2", (0.0, 1.0)),
    ("Texture_AngularSecondMoment", (0.0, 1.0)),
    ("Texture_InverseDifferenceMoment", (0.0, 1.0)),
    ("Texture_", (0.0, _INF)),  # contrast, variances, entropies, sum average
    ("RadialDistribution_FracAtD", (0.0, 1.0)),
    ("RadialDistribution_", (0.0, _INF)),
    ("Granularity_", (0.0, _INF)),
    ("Children_", (0.0, _INF)),  # counts
    ("Neighbors_NumberOfNeighbors", (0.0, _INF)),
)


def circular_period(feature: str) -> float | None:
    """The wrap period of an angular feature (e.g. 180° for AreaShape orientation), else None."""
    for suffix, period in CIRCULAR_PERIODS.items():
        if feature.endswith(suffix):
            return period
    return None


def wrap_angle(values: np.ndarray, period: float) -> np.ndarray:
    """Angles mapped onto [−period/2, period/2)."""
    values = np.asarray(values, dtype=np.float64)
    return (values + period / 2) % period - period / 2


def physical_bounds(feature: str) -> tuple[float, float]:
    """(lower, upper) a measurement called `feature` can physically take; (−inf, inf) if unknown."""
    period = circular_period(feature)
    if period is not None:
        return -period / 2, period / 2
    for key, bounds in PHYSICAL_BOUNDS:
        if key in feature:
            return bounds
    return -_INF, _INF


def feature_domain(
    feature_names: Sequence[str], reference: pd.DataFrame | None = None, *, margin: float = DEFAULT_MARGIN
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature valid (lower, upper) in raw units: physical bounds ∩ reference range (quantiles) ± margin.

    Without `reference` (or where a feature has no finite reference value) only the
    physical bounds apply. Angular features keep their full period.
    """
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a non-negative number; got {margin}")
    names = list(feature_names)
    lower = np.empty(len(names))
    upper = np.empty(len(names))
    for i, name in enumerate(names):
        lo, hi = physical_bounds(name)
        if reference is not None and name in reference.columns and circular_period(name) is None:
            col = pd.to_numeric(reference[name], errors="coerce").to_numpy(dtype=np.float64)
            col = col[np.isfinite(col)]
            if col.size:
                q_lo, q_hi = (float(q) for q in np.quantile(col, RANGE_QUANTILES))
                spread = q_hi - q_lo
                widened = (max(lo, q_lo - margin * spread), min(hi, q_hi + margin * spread))
                if widened[0] <= widened[1]:  # else the reference lies outside the physical range: keep the latter
                    lo, hi = widened
        lower[i], upper[i] = lo, hi
    return lower, upper


@dataclass(frozen=True)
class OutOfRange:
    """One feature of a profile outside the model's training range."""

    feature: str
    sd: float  # signed distance from the training mean, in training SDs (before clipping)


def beyond_training_range(model: CP2Image, profiles: pd.DataFrame | pd.Series) -> list[OutOfRange]:
    """Features more than the model's clip limit (`model.feature_statistics.clip_sigma` training SDs)
    from the training mean, furthest first.

    `profiles` holds raw values by feature name (one row or many; for many rows a feature's
    furthest value counts). Features the model does not read are ignored.
    """
    frame = profiles.to_frame().T if isinstance(profiles, pd.Series) else profiles
    stats = model.feature_statistics  # the model's feature space: names, mean, scale, clip limit
    names = list(stats.names)
    missing = [f for f in names if f not in frame.columns]
    if missing:
        raise ValueError(f"profiles lack {len(missing)} of the model's features, e.g. {missing[:3]}")
    raw = frame[names].to_numpy(dtype=np.float64)  # (N, p)
    z = (raw - stats.mean) / stats.scale
    limit = float(stats.clip_sigma)
    furthest = np.take_along_axis(z, np.nanargmax(np.abs(z), axis=0)[None], axis=0)[0]  # (p,) signed
    out = [OutOfRange(f, float(v)) for f, v in zip(names, furthest) if np.isfinite(v) and abs(v) > limit]
    return sorted(out, key=lambda item: -abs(item.sd))

"""Feature perturbation (paper Fig. 4c): sweep one feature of a cell, keep the rest, generate.

Beyond the paper, every generated image can be measured back with
`cp2image.features.measure`, giving requested-vs-measured values and their Spearman
ρ: a direct check of whether the model honours that feature (ρ near 1) or ignores it.
"""
from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from cp2image.analysis.space import ProfileModel, model_feature_space, require_columns, resolve_feature

log = logging.getLogger(__name__)

CIRCULAR_PERIODS: dict[str, float] = {"AreaShape_Orientation": 180.0}
"""Features that are axial angles (degrees): the measured value wraps with this period, so it
is unwrapped along the sweep (np.unwrap) before ρ and slope are computed."""

Measurer = Callable[[np.ndarray], pd.DataFrame]
"""images (N, 3, H, W) uint8 → one row of CellProfiler-named features per image."""


@dataclass
class PerturbationResult:
    """A sweep of one feature: requested values, the profiles fed in, images, measured values."""

    feature: str
    requested: np.ndarray  # (n_steps,) raw feature values fed to the model
    offsets: np.ndarray  # (n_steps,) offsets from the cell's own value, in `unit`
    unit: str  # "sd" or "raw"
    sd: float | None  # raw size of one SD when unit == "sd"
    sd_source: str | None  # where that SD came from
    profiles: pd.DataFrame  # (n_steps, p) model features, model order
    images: np.ndarray  # (n_steps, 3, H, W) uint8
    measured: np.ndarray | None = None  # (n_steps,) same feature measured on the images (NaN: segmentation failed)
    measured_unwrapped: np.ndarray | None = None  # angles unwrapped along the sweep (circular features only)
    segmentation_failed: np.ndarray | None = None  # (n_steps,) bool
    spearman_rho: float | None = None  # Spearman ρ(requested, measured) over finite pairs
    spearman_p: float | None = None
    slope: float | None = None  # least-squares d(measured)/d(requested): 1 = full effect, 0 = ignored
    outside_reference: np.ndarray | None = None  # (n_steps,) bool: requested value beyond the reference cells' range
    measured_feature: str | None = None  # column read from the measurement (== feature when measurable)
    note: str | None = None  # why measurement is missing, if it is
    measurements: pd.DataFrame | None = field(default=None, repr=False)  # full measure() output

    def table(self) -> pd.DataFrame:
        """One row per step: step, offset, requested, [outside_reference], [measured, segmentation_failed]."""
        out = pd.DataFrame(
            {
                "step": np.arange(len(self.requested)),
                f"offset_{self.unit}": self.offsets,
                "requested": self.requested,
            }
        )
        out.insert(0, "feature", self.feature)
        if self.outside_reference is not None:
            out["outside_reference"] = self.outside_reference
        if self.measured is not None:
            out["measured"] = self.measured
            if self.measured_unwrapped is not None:
                out["measured_unwrapped"] = self.measured_unwrapped
            out["segmentation_failed"] = self.segmentation_failed
        return out


def feature_sd(
    model: ProfileModel, feature: str, *, reference: pd.DataFrame | None = None
) -> tuple[float, str]:
    """Raw size of one SD of `feature`: the reference cells' SD if given, else the model's scale."""
    if reference is not None:
        if feature not in reference.columns:
            raise ValueError(f"reference cells have no column {feature!r}")
        col = pd.to_numeric(reference[feature], errors="coerce").to_numpy(dtype=np.float64)
        col = col[np.isfinite(col)]
        if col.size < 2:
            raise ValueError(f"reference cells have fewer than 2 finite values of {feature!r}; cannot take an SD")
        sd = float(np.std(col, ddof=1))
        if not sd > 0:
            raise ValueError(f"{feature!r} is constant in the reference cells (SD 0); use unit='raw'")
        return sd, f"SD over {col.size} reference cells"
    space = model_feature_space(model)
    if space is not None:
        i = space.feature_names.index(feature)
        return float(space.scale[i]), "model normalisation scale"
    raise ValueError(
        "unit='sd' needs reference= (cells to take the SD from) because the model exposes no "
        "normalisation statistics; or use unit='raw'"
    )


def sweep_feature(
    model: ProfileModel,
    profile: pd.Series,
    feature: str,
    *,
    n_steps: int = 9,
    span: float = 2.0,
    unit: Literal["sd", "raw"] = "sd",
    reference: pd.DataFrame | None = None,
    measure_back: bool = True,
    values: Sequence[float] | None = None,
    measurer: Measurer | None = None,
    batch_size: int = 256,
) -> PerturbationResult:
    """Generate a cell with `feature` set to evenly spaced values, every other feature fixed.

    Values are `profile[feature] + linspace(-span, span, n_steps)` in `unit`: "raw"
    (the feature's own units, e.g. pixels for an area) or "sd" (one SD = the
    `reference` cells' SD of the feature, else the model's normalisation scale).
    `values=` gives explicit raw values instead. With `measure_back`, the images are
    measured (`measurer`, default `cp2image.features.measure`) and the Spearman ρ of
    requested vs measured is returned.
    """
    names = list(model.feature_names)
    feature = resolve_feature(feature, names)
    if not isinstance(profile, pd.Series):
        raise ValueError(f"profile must be a pandas Series indexed by feature name; got {type(profile).__name__}")
    require_columns(profile, names, what="profile")
    base = pd.to_numeric(profile.loc[names], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(base)):
        bad = [n for n, v in zip(names, base) if not np.isfinite(v)]
        raise ValueError(f"profile has non-finite values for {len(bad)} features: {', '.join(bad[:10])}")
    j = names.index(feature)

    sd: float | None = None
    sd_source: str | None = None
    if values is not None:
        requested = np.asarray(values, dtype=np.float64).reshape(-1)
        if requested.size < 1 or not np.all(np.isfinite(requested)):
            raise ValueError("values must be one or more finite numbers")
        offsets = requested - base[j]
        unit = "raw"
    else:
        if n_steps < 2:
            raise ValueError(f"n_steps must be at least 2; got {n_steps}")
        if not (math.isfinite(span) and span > 0):
            raise ValueError(f"span must be a positive number; got {span}")
        offsets = np.linspace(-span, span, n_steps)
        if unit == "sd":
            sd, sd_source = feature_sd(model, feature, reference=reference)
            requested = base[j] + offsets * sd
        elif unit == "raw":
            requested = base[j] + offsets
        else:
            raise ValueError(f"unit must be 'sd' or 'raw'; got {unit!r}")

    outside = None
    if reference is not None and feature in reference.columns:
        ref = pd.to_numeric(reference[feature], errors="coerce").to_numpy(dtype=np.float64)
        ref = ref[np.isfinite(ref)]
        if ref.size:
            outside = (requested < ref.min()) | (requested > ref.max())
            if outside.any():
                warnings.warn(
                    f"{int(outside.sum())} of {requested.size} requested {feature} values lie outside the range seen "
                    f"in the reference cells ({ref.min():.4g} to {ref.max():.4g}); the model extrapolates there",
                    stacklevel=2,
                )

    matrix = np.repeat(base[None, :], requested.size, axis=0)  # (n, p)
    matrix[:, j] = requested
    profiles = pd.DataFrame(matrix, columns=names)
    images = np.asarray(model.generate(profiles, batch_size=batch_size))
    result = PerturbationResult(
        feature=feature,
        requested=requested,
        offsets=np.asarray(offsets, dtype=np.float64),
        unit=unit,
        sd=sd,
        sd_source=sd_source,
        profiles=profiles,
        images=images,
        outside_reference=outside,
    )
    if measure_back:
        measure_result(result, measurer=measurer)
    return result


def _default_measurer() -> Measurer:
    from cp2image.features import measure  # late import: measurement is optional for a sweep

    return measure


def measure_result(result: PerturbationResult, *, measurer: Measurer | None = None) -> PerturbationResult:
    """Measure `result.images` and fill measured / segmentation_failed / Spearman ρ in place."""
    measurer = measurer or _default_measurer()
    frame = measurer(result.images)
    result.measurements = frame
    n = len(result.requested)
    failed = (
        frame["Metadata_Segmentation_Failed"].to_numpy(dtype=bool)
        if "Metadata_Segmentation_Failed" in frame.columns
        else np.zeros(n, dtype=bool)
    )
    if result.feature not in frame.columns:
        result.note = f"{result.feature!r} is not among the measured features, so it cannot be checked on the images"
        log.info(result.note)
        return result
    measured = pd.to_numeric(frame[result.feature], errors="coerce").to_numpy(dtype=np.float64)
    measured = np.where(failed, np.nan, measured)
    result.measured = measured
    result.segmentation_failed = failed
    result.measured_feature = result.feature
    compared = measured
    period = circular_period(result.feature)
    if period is not None:
        compared = unwrap_finite(measured, period)
        result.measured_unwrapped = compared
    rho, p = spearman(result.requested, compared)
    result.spearman_rho, result.spearman_p = rho, p
    result.slope = fitted_slope(result.requested, compared)
    if rho is None:
        result.note = "fewer than 3 finite, non-constant measured values; Spearman ρ undefined"
    return result


def circular_period(feature: str) -> float | None:
    """The wrap period of an angular feature (e.g. 180° for AreaShape orientation), else None."""
    for suffix, period in CIRCULAR_PERIODS.items():
        if feature.endswith(suffix):
            return period
    return None


def unwrap_finite(values: np.ndarray, period: float) -> np.ndarray:
    """Unwrap angles along the sweep (jumps over period/2 are wraps); NaNs stay NaN."""
    out = np.array(values, dtype=np.float64)
    ok = np.isfinite(out)
    if ok.sum() >= 2:
        out[ok] = np.unwrap(out[ok], period=period)
    return out


def fitted_slope(x: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of y on x over finite pairs; None if fewer than 2 or x constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return None
    xc = x[ok] - x[ok].mean()
    return float(xc @ (y[ok] - y[ok].mean()) / (xc @ xc))


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Spearman ρ and p over pairs where both are finite; (None, None) if undefined."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return None, None
    res = stats.spearmanr(x[ok], y[ok])
    return float(res.statistic), float(res.pvalue)

"""Feature perturbation (paper Fig. 4c): sweep one feature of a cell and generate.

Two modes:

- ``"coupled"`` (default, "with its correlated features"): the other features follow
  their conditional expectation given the swept one (`cp2image.analysis.coupling`,
  the training cells' shrunk covariance stored beside the model). This asks the
  generator for cells like the ones it was trained on: a larger nucleus also has a
  longer perimeter and more integrated DNA.
- ``"single"`` ("this feature only", the paper's mode): every other feature stays fixed.

Requests outside a feature's valid domain (`cp2image.analysis.domain`: physical
bounds ∩ the reference cells' range ± 10 %) are clipped to it, and the result says
which steps were clipped and why. Angular features are wrapped onto their period.

Every generated image can be measured back with `cp2image.features.measure`, giving
the **slope** (measured change / requested change: 1 = the cell changed by what was
asked, 0 = ignored) and Spearman ρ of requested vs measured. ρ alone is not enough:
a nucleus that grows by 3 % of what was asked still gives ρ = 1.
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

from cp2image.analysis.coupling import FeatureCoupling, conditional_shift, normalisation_digest
from cp2image.analysis.domain import (  # noqa: F401  (CIRCULAR_PERIODS, circular_period re-exported)
    CIRCULAR_PERIODS, DEFAULT_MARGIN, circular_period, feature_domain, physical_bounds, wrap_angle,
)
from cp2image.analysis.space import ProfileModel, model_feature_space, require_columns, resolve_feature
from cp2image.data.columns import FAILED_COLUMN

log = logging.getLogger(__name__)

SweepMode = Literal["coupled", "single"]
SWEEP_MODES: dict[str, str] = {
    "coupled": "with its correlated features",
    "single": "this feature only",
}
"""Sweep modes and their plain-language names (CLI help, app labels)."""

Measurer = Callable[[np.ndarray], pd.DataFrame]
"""images (N, 3, H, W) uint8 → one row of CellProfiler-named features per image."""


@dataclass
class PerturbationResult:
    """A sweep of one feature: requested values, the profiles fed in, images, measured values."""

    feature: str
    requested: np.ndarray  # (n_steps,) raw values asked of the model after domain clipping (angles unwrapped)
    offsets: np.ndarray  # (n_steps,) offsets from the cell's own value, in `unit`, as asked
    unit: str  # "sd" or "raw"
    sd: float | None  # raw size of one SD when unit == "sd"
    sd_source: str | None  # where that SD came from
    profiles: pd.DataFrame  # (n_steps, p) model features, model order: exactly what was fed to the model
    images: np.ndarray  # (n_steps, 3, H, W) uint8
    mode: str = "single"  # "coupled" (with its correlated features) or "single" (this feature only)
    asked: np.ndarray | None = None  # (n_steps,) raw values before domain clipping
    clipped: np.ndarray | None = None  # (n_steps,) bool: the asked value lay outside the valid domain
    clip_reasons: list[str] = field(default_factory=list)  # one plain sentence per clipped step
    domain: tuple[float, float] | None = None  # valid (lower, upper) of the feature, raw units
    domain_source: str | None = None  # where the range beyond the physical bounds came from
    others_clipped: np.ndarray | None = None  # (n_steps,) coupled mode: other features held at their domain edge
    moved: pd.DataFrame | None = None  # coupled mode: every other feature's shift over the sweep, largest first
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

    @property
    def n_clipped(self) -> int:
        return 0 if self.clipped is None else int(np.sum(self.clipped))

    @property
    def clip_notice(self) -> str | None:
        """One plain paragraph for the user when any step was clipped, else None (raw units)."""
        return self.describe_clipping()

    def describe_clipping(self, fmt: Callable[[float], str] | None = None) -> str | None:
        """The clip notice with values written by `fmt` (e.g. µm² for the app), else None when nothing was clipped.

        "3 of 9 requested values of Cells_AreaShape_Area lie outside its valid range (117 to 4,989) and were
        clipped to it: asked −1,364, −814, −263 → used 117 (below the range). …"
        """
        if not self.n_clipped or self.asked is None or self.clipped is None:
            return None
        fmt = fmt or (lambda v: f"{v:,.4g}")
        parts = []
        for side, mask in (("below", self.clipped & (self.asked < self.requested)),
                           ("above", self.clipped & (self.asked > self.requested))):
            if mask.any():
                asked = ", ".join(fmt(v) for v in self.asked[mask])
                used = ", ".join(dict.fromkeys(fmt(v) for v in self.requested[mask]))
                parts.append(f"asked {asked} → used {used} ({side} the range)")
        lo, hi = self.domain if self.domain is not None else (float("nan"), float("nan"))
        source = f" The range is {self.domain_source}." if self.domain_source else ""
        return (f"{self.n_clipped} of {len(self.requested)} requested values of {self.feature} lie outside its valid "
                f"range ({fmt(lo)} to {fmt(hi)}) and were clipped to it: " + "; ".join(parts) + "." + source)

    def moved_with(self, k: int = 10) -> pd.DataFrame:
        """The `k` other features that moved most over the sweep (coupled mode; empty for "single")."""
        if self.moved is None:
            return pd.DataFrame(columns=["feature", "from", "to", "shift", "shift_sd", "correlation"])
        return self.moved.head(k).reset_index(drop=True)

    def table(self) -> pd.DataFrame:
        """One row per step: feature, mode, step, offset, asked, requested, clipped, [outside_reference], [measured…]."""
        n = len(self.requested)
        out = pd.DataFrame(
            {
                "feature": self.feature,
                "mode": self.mode,
                "step": np.arange(n),
                f"offset_{self.unit}": self.offsets,
                "asked": self.asked if self.asked is not None else self.requested,
                "requested": self.requested,
                "clipped": self.clipped if self.clipped is not None else np.zeros(n, dtype=bool),
            }
        )
        if self.outside_reference is not None:
            out["outside_reference"] = self.outside_reference
        if self.measured is not None:
            out["measured"] = self.measured
            if self.measured_unwrapped is not None:
                out["measured_unwrapped"] = self.measured_unwrapped
            out["segmentation_failed"] = self.segmentation_failed
        return out


def step_captions(result: PerturbationResult, *, pixel_size_um: float | None, with_unit: bool = True) -> list[str]:
    """One short caption per step, "1,390 → 1,430 µm²" (requested → measured), plain numbers, unit once.

    Areas and lengths in µm² / µm with `pixel_size_um` (pixels without); a clipped step's
    requested value carries a "*" (the clip notice says why); "n/a" where segmentation failed.
    `with_unit=False` leaves the unit out ("1,390 → 1,430"), for a strip whose heading names it.
    """
    from cp2image.analysis.feature_labels import plain_number, to_physical, unit_symbol

    def number(value: float) -> str:
        try:
            return plain_number(to_physical(result.feature, value, pixel_size_um=pixel_size_um))
        except ValueError:  # not a CellProfiler name: the raw number
            return plain_number(value)

    try:
        unit = unit_symbol(result.feature, pixel_size_um=pixel_size_um)
    except ValueError:
        unit = ""
    glue = "" if unit in ("", "°", "%") else " "
    clipped = result.clipped if result.clipped is not None else np.zeros(len(result.requested), dtype=bool)
    captions = []
    for k, value in enumerate(result.requested):
        text = number(value) + ("*" if clipped[k] else "")
        if result.measured is not None:
            measured = result.measured[k]
            text += " → " + (number(measured) if np.isfinite(measured) else "n/a")
        captions.append(text + (glue + unit if with_unit else ""))
    return captions


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
    mode: SweepMode = "coupled",
    coupling: FeatureCoupling | None = None,
    n_steps: int = 9,
    span: float = 2.0,
    unit: Literal["sd", "raw"] = "sd",
    reference: pd.DataFrame | None = None,
    measure_back: bool = True,
    values: Sequence[float] | None = None,
    measurer: Measurer | None = None,
    batch_size: int = 256,
) -> PerturbationResult:
    """Generate a cell with `feature` set to evenly spaced values.

    Values are `profile[feature] + linspace(-span, span, n_steps)` in `unit`: "raw"
    (the feature's own units, e.g. pixels for an area) or "sd" (one SD = the
    `reference` cells' SD of the feature, else the model's normalisation scale).
    `values=` gives explicit raw values instead.

    `mode="coupled"` (default) moves every other feature by its conditional
    expectation given the swept one; it needs `coupling=` (`load_coupling(model
    folder)`). `mode="single"` keeps every other feature fixed (the paper's sweep).
    Requested values are clipped to the feature's valid domain (the coupling's, else
    physical bounds ∩ `reference` range ± 10 %); angular features are wrapped.
    With `measure_back`, the images are measured (`measurer`, default
    `cp2image.features.measure`) and slope and Spearman ρ of requested vs measured
    are returned.
    """
    names = list(model.feature_names)
    feature = resolve_feature(feature, names)
    if mode not in SWEEP_MODES:
        raise ValueError(f"mode must be one of {sorted(SWEEP_MODES)}; got {mode!r}")
    if not isinstance(profile, pd.Series):
        raise ValueError(f"profile must be a pandas Series indexed by feature name; got {type(profile).__name__}")
    require_columns(profile, names, what="profile")
    base = pd.to_numeric(profile.loc[names], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(base)):
        bad = [n for n, v in zip(names, base) if not np.isfinite(v)]
        raise ValueError(f"profile has non-finite values for {len(bad)} features: {', '.join(bad[:10])}")
    j = names.index(feature)
    space = _check_coupling(model, names, mode, coupling)

    sd: float | None = None
    sd_source: str | None = None
    if values is not None:
        asked = np.asarray(values, dtype=np.float64).reshape(-1)
        if asked.size < 1 or not np.all(np.isfinite(asked)):
            raise ValueError("values must be one or more finite numbers")
        offsets = asked - base[j]
        unit = "raw"
    else:
        if n_steps < 2:
            raise ValueError(f"n_steps must be at least 2; got {n_steps}")
        if not (math.isfinite(span) and span > 0):
            raise ValueError(f"span must be a positive number; got {span}")
        offsets = np.linspace(-span, span, n_steps)
        if unit == "sd":
            sd, sd_source = feature_sd(model, feature, reference=reference)
            asked = base[j] + offsets * sd
        elif unit == "raw":
            asked = base[j] + offsets
        else:
            raise ValueError(f"unit must be 'sd' or 'raw'; got {unit!r}")

    if coupling is not None:
        lower, upper = coupling.lower, coupling.upper
        domain_source = f"the model's training cells' range ± {coupling.margin:.0%}"
    else:
        lower, upper = feature_domain(names, reference)
        domain_source = f"the reference cells' range ± {DEFAULT_MARGIN:.0%}" if reference is not None else None
    range_text = ("the measurement's physical bounds" + (f" within {domain_source} (0.5–99.5 % quantiles)"
                                                         if domain_source else ""))
    # The chosen cell's own values are always valid (it is a measured cell), even where it lies
    # outside the reference cells' range: the domain is widened to include them.
    lower, upper = np.minimum(lower, base), np.maximum(upper, base)
    period = circular_period(feature)
    if period is None:
        requested = np.clip(asked, lower[j], upper[j])
        clipped = requested != asked
    else:  # angles live on their period: wrapped when fed to the model, never clipped
        requested = asked.copy()
        clipped = np.zeros(asked.size, dtype=bool)
    reasons = [_clip_reason(feature, a, r, lower[j], upper[j], domain_source) for a, r in zip(asked[clipped],
                                                                                            requested[clipped])]

    outside = None
    if reference is not None and feature in reference.columns and period is None:  # angles: wrapped, never outside
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

    fed = requested if period is None else wrap_angle(requested, period)
    matrix = np.repeat(base[None, :], requested.size, axis=0)  # (n, p)
    others_clipped = None
    moved = None
    if mode == "coupled":
        assert space is not None and coupling is not None
        dz = (requested - base[j]) / space.scale[j]  # (n,) swept feature's change, normalised units
        matrix = space.inverse(space.transform(base)[None, :] + conditional_shift(coupling, feature, dz))
        matrix, others_clipped = _into_domain(matrix, names, lower, upper, keep=j)
        moved = _moved_table(matrix, names, j, space.scale, coupling)
    matrix[:, j] = fed
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
        mode=mode,
        asked=asked,
        clipped=clipped,
        clip_reasons=reasons,
        domain=(float(lower[j]), float(upper[j])),
        domain_source=range_text,
        others_clipped=others_clipped,
        moved=moved,
        outside_reference=outside,
    )
    if measure_back:
        measure_result(result, measurer=measurer)
    return result


def _check_coupling(model: ProfileModel, names: list[str], mode: str, coupling: FeatureCoupling | None):
    """The model's normalisation when the coupling can be used with it; errors that say what to do."""
    if coupling is not None and list(coupling.feature_names) != names:
        raise ValueError(
            f"the coupling describes {len(coupling.feature_names)} features that are not the model's "
            f"{len(names)} in model order; load the coupling stored with this model (load_coupling(model folder))"
        )
    if mode != "coupled":
        return None
    if coupling is None:
        raise ValueError(
            "mode='coupled' (the default) needs the model's feature coupling: pass "
            "coupling=cp2image.analysis.coupling.load_coupling(model_folder); if that is None the folder has none — "
            "fit one with `cp2image perturb --fit-coupling --model DIR --data DATASET`, or sweep with mode='single' "
            "(this feature only)"
        )
    space = model_feature_space(model)
    if space is None:
        raise ValueError("mode='coupled' needs a model with normalisation statistics (config.feature_mean/scale); "
                         "use mode='single'")
    if coupling.normalisation_digest and coupling.normalisation_digest != normalisation_digest(model):
        raise ValueError("the coupling was fitted under another normalisation than this model's (it belongs to an "
                         "earlier training); refit it with `cp2image perturb --fit-coupling`")
    return space


def _into_domain(matrix: np.ndarray, names: list[str], lower: np.ndarray, upper: np.ndarray,
                 *, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Other features moved by the coupling, clipped to their domains (angles wrapped); count per step."""
    out = np.array(matrix, dtype=np.float64)
    periodic = np.array([circular_period(n) is not None for n in names])
    clip = ~periodic
    clip[keep] = False
    clipped = np.clip(out[:, clip], lower[clip], upper[clip])
    count = (clipped != out[:, clip]).sum(axis=1)
    out[:, clip] = clipped
    for i in np.flatnonzero(periodic):
        if i != keep:
            out[:, i] = wrap_angle(out[:, i], circular_period(names[i]))
    return out, count


def _moved_table(matrix: np.ndarray, names: list[str], j: int, scale: np.ndarray,
                 coupling: FeatureCoupling) -> pd.DataFrame:
    """Every other feature's value at the first and last step, its shift in raw and SD units, largest first."""
    first, last = matrix[0], matrix[-1]
    shift = last - first
    table = pd.DataFrame({
        "feature": names,
        "from": first,
        "to": last,
        "shift": shift,
        "shift_sd": shift / scale,  # SD = the model's training SD of that feature
        "correlation": coupling.correlation(names[j]),
    }).drop(index=j)
    order = np.argsort(-np.abs(table["shift_sd"].to_numpy()), kind="stable")
    return table.iloc[order].reset_index(drop=True)


def _clip_reason(feature: str, asked: float, kept: float, lower: float, upper: float, domain_source: str | None) -> str:
    """'asked −1,360, used 22.1: below 0, the smallest value an area can take' style sentence."""
    physical = physical_bounds(feature)
    side = "below" if asked < lower else "above"
    edge = lower if asked < lower else upper
    if edge == (physical[0] if side == "below" else physical[1]):
        why = f"{side} {edge:,.4g}, the {'smallest' if side == 'below' else 'largest'} value this measurement can take"
    else:
        why = f"{side} the valid range: {domain_source or 'the reference cells'}"
    return f"asked {asked:,.4g}, used {kept:,.4g} ({why})"


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
        frame[FAILED_COLUMN].to_numpy(dtype=bool)
        if FAILED_COLUMN in frame.columns
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

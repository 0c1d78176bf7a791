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
which steps were clipped and why. Object areas (`*_AreaShape_Area`) are also bounded by
the crop's pixel count: features are measured on the crop, so no training cell exceeds
it, while the widened range did (cp2image-sim cell area: 4,853 px in a 4,624-px crop;
docs/feature-control.md, round 5). Angular features are wrapped onto their period.

Refinement (`cp2image.models.refine`): `refine=None` (default) refines coupled sweeps with the
model's default where the model's settings say so (`RefineConfig.sweeps`: measured per model)
and leaves "this feature only" sweeps as drawn: there it was measured to add no slope (real
model 0.03 → 0.03) and to make the sweep non-monotone (nucleus area ρ 1.00 → 0.69;
docs/feature-control.md, round 4). `refine=False` never refines, `True` or a `RefineConfig`
always does. A refined sweep refines its steps jointly along the sweep when its settings'
`sweep_smoothness` > 0 (round 5: the real-cell model's default, which met the control target on
three cell draws; the simulated model's sweeps stay as drawn).

Orientation: the generators do not draw it, so a sweep of an angular feature turns each
generated cell to its requested nucleus angle (`CP2Image.generate(..., pose=True)`, on
when the model `controls_pose`). Other sweeps and plain generation leave cells as drawn.

The result type lives in `perturb_result`, the measure-back (slope, Spearman ρ) in
`measure_back`; both are re-exported here, so `perturb` stays the one entry point.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from cp2image.analysis.coupling import FeatureCoupling, conditional_shift, normalisation_digest
from cp2image.analysis.domain import (  # noqa: F401  (CIRCULAR_PERIODS, circular_period re-exported)
    CIRCULAR_PERIODS, DEFAULT_MARGIN, circular_period, feature_domain, physical_bounds, wrap_angle,
)
from cp2image.analysis.measure_back import (  # noqa: F401  (re-exported)
    Measurer, fitted_slope, measure_result, spearman, unwrap_finite,
)
from cp2image.analysis.perturb_result import (  # noqa: F401  (re-exported)
    SWEEP_MODES, PerturbationResult, SweepMode, step_captions,
)
from cp2image.analysis.space import ProfileModel, model_feature_space, require_columns, resolve_feature
from cp2image.warnings import OutsideReference

if TYPE_CHECKING:  # only for hints: importing refine imports torch (seconds), NumPy-model sweeps need none
    from cp2image.models.refine import RefineConfig


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


def _sweep_refinement(model: ProfileModel, mode: SweepMode, refine: "bool | RefineConfig | None") -> dict:
    """`generate`'s refine argument for a sweep (module docstring); only models that refine take it.

    None follows the model's settings for coupled sweeps (`RefineConfig.sweeps`) and never refines
    'this feature only'. A refined sweep refines its steps jointly with its settings' `sweep_smoothness`
    (`cp2image.models.refine`), unless the settings already set `smoothness`.
    """
    if not getattr(model, "can_refine", False):
        return {} if refine is None else {"refine": refine}
    if refine is None:
        default = getattr(model, "refinement", None)
        if mode == "single" or default is None or not default.sweeps:
            return {"refine": False}
        refine = default
    elif refine is True:
        resolve = getattr(model, "resolve_refine", None)
        refine = resolve(True) if resolve is not None else True
        if refine is None:  # the folder's settings refine with 0 steps
            return {"refine": False}
    if dataclasses.is_dataclass(refine) and refine.smoothness == 0 and refine.sweep_smoothness > 0:  # a RefineConfig
        refine = dataclasses.replace(refine, smoothness=refine.sweep_smoothness)
    return {"refine": refine}


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
    refine: "bool | RefineConfig | None" = None,
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
    are returned. `refine` goes to `model.generate`; None: the model's default in the
    coupled mode where its settings refine sweeps, off in the single mode (module docstring).
    """
    names = list(model.feature_names)
    feature = resolve_feature(feature, names)
    if mode not in SWEEP_MODES:
        raise ValueError(f"mode must be one of {sorted(SWEEP_MODES)}; got {mode!r}")
    base = _profile_values(profile, names)
    j = names.index(feature)
    space = _check_coupling(model, names, mode, coupling)
    ask = _asked_values(model, feature, base[j], values=values, n_steps=n_steps, span=span, unit=unit,
                        reference=reference)
    crop_pixels = _crop_pixels(model)
    domain = _domain(names, base, coupling, reference, crop_pixels=crop_pixels)
    period = circular_period(feature)
    if period is None:
        requested = np.clip(ask.asked, domain.lower[j], domain.upper[j])
        clipped = requested != ask.asked
    else:  # angles live on their period: wrapped when fed to the model, never clipped
        requested = ask.asked.copy()
        clipped = np.zeros(ask.asked.size, dtype=bool)
    reasons = [_clip_reason(feature, a, r, domain.lower[j], domain.upper[j], domain.source, crop_pixels)
               for a, r in zip(ask.asked[clipped], requested[clipped])]
    outside = _outside_reference(feature, requested, reference) if period is None else None

    matrix = np.repeat(base[None, :], requested.size, axis=0)  # (n, p)
    others_clipped = moved = None
    if mode == "coupled":
        assert space is not None and coupling is not None
        dz = (requested - base[j]) / space.scale[j]  # (n,) swept feature's change, normalised units
        matrix = space.inverse(space.transform(base)[None, :] + conditional_shift(coupling, feature, dz))
        matrix, others_clipped = _into_domain(matrix, names, domain.lower, domain.upper, keep=j)
        moved = _moved_table(matrix, names, j, space.scale, coupling)
    matrix[:, j] = requested if period is None else wrap_angle(requested, period)
    profiles = pd.DataFrame(matrix, columns=names)
    # The generator does not draw orientation: an angle sweep turns each cell to its requested
    # nucleus angle (`cp2image.models.pose`), which other sweeps do not need (module docstring).
    turn = {"pose": True} if period is not None and getattr(model, "controls_pose", False) else {}
    turn.update(_sweep_refinement(model, mode, refine))
    if getattr(turn.get("refine"), "smoothness", 0) > 0:
        batch_size = max(batch_size, len(profiles))  # joint refinement sees the whole sweep at once
    result = PerturbationResult(
        feature=feature, requested=requested, offsets=np.asarray(ask.offsets, dtype=np.float64), unit=ask.unit,
        sd=ask.sd, sd_source=ask.sd_source, profiles=profiles,
        images=np.asarray(model.generate(profiles, batch_size=batch_size, **turn)), mode=mode, asked=ask.asked,
        clipped=clipped, clip_reasons=reasons, domain=(float(domain.lower[j]), float(domain.upper[j])),
        domain_source=domain.text, others_clipped=others_clipped, moved=moved, outside_reference=outside,
    )
    if measure_back:
        measure_result(result, measurer=measurer)
    return result


def _profile_values(profile: pd.Series, names: list[str]) -> np.ndarray:
    """The cell's model features as float64, in model order; errors name what is missing or not finite."""
    if not isinstance(profile, pd.Series):
        raise ValueError(f"profile must be a pandas Series indexed by feature name; got {type(profile).__name__}")
    require_columns(profile, names, what="profile")
    base = pd.to_numeric(profile.loc[names], errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(base)):
        bad = [n for n, v in zip(names, base) if not np.isfinite(v)]
        raise ValueError(f"profile has non-finite values for {len(bad)} features: {', '.join(bad[:10])}")
    return base


@dataclass
class _Asked:
    """The raw values asked for, before the domain clips them, and how they were expressed."""

    asked: np.ndarray
    offsets: np.ndarray
    unit: str
    sd: float | None = None
    sd_source: str | None = None


def _asked_values(model: ProfileModel, feature: str, own: float, *, values: Sequence[float] | None, n_steps: int,
                  span: float, unit: str, reference: pd.DataFrame | None) -> _Asked:
    if values is not None:
        asked = np.asarray(values, dtype=np.float64).reshape(-1)
        if asked.size < 1 or not np.all(np.isfinite(asked)):
            raise ValueError("values must be one or more finite numbers")
        return _Asked(asked, asked - own, "raw")
    if n_steps < 2:
        raise ValueError(f"n_steps must be at least 2; got {n_steps}")
    if not (math.isfinite(span) and span > 0):
        raise ValueError(f"span must be a positive number; got {span}")
    offsets = np.linspace(-span, span, n_steps)
    if unit == "sd":
        sd, sd_source = feature_sd(model, feature, reference=reference)
        return _Asked(own + offsets * sd, offsets, unit, sd, sd_source)
    if unit == "raw":
        return _Asked(own + offsets, offsets, unit)
    raise ValueError(f"unit must be 'sd' or 'raw'; got {unit!r}")


@dataclass
class _Domain:
    """Per-feature valid range (model order) and where it comes from, in words."""

    lower: np.ndarray
    upper: np.ndarray
    source: str | None  # the range's origin, for clip reasons
    text: str  # the whole rule, for the result


def _crop_pixels(model: ProfileModel) -> int | None:
    """Pixels in one generated crop (H·W), or None when the model does not say its image size."""
    size = getattr(model, "image_size", None)
    return int(size) ** 2 if isinstance(size, (int, np.integer)) and size > 0 else None


def _is_object_area(name: str) -> bool:
    """An object's pixel count (Nuclei/Cells/Cytoplasm_AreaShape_Area): it cannot exceed the crop's."""
    return name.endswith("_AreaShape_Area")


def _domain(names: list[str], base: np.ndarray, coupling: FeatureCoupling | None,
            reference: pd.DataFrame | None, *, crop_pixels: int | None = None) -> _Domain:
    if coupling is not None:
        lower, upper = coupling.lower, coupling.upper
        source = f"the model's training cells' range ± {coupling.margin:.0%}"
    else:
        lower, upper = feature_domain(names, reference)
        source = f"the reference cells' range ± {DEFAULT_MARGIN:.0%}" if reference is not None else None
    text = "the measurement's physical bounds" + (f" within {source} (0.5–99.5 % quantiles)" if source else "")
    if crop_pixels is not None:
        # An object in an H×W crop has at most H·W pixels: the widened training range can run past that
        # (cp2image-sim cell area: 4,853 px in a 68×68 = 4,624 px crop), asking for cells the crop cannot show.
        upper = np.array(upper, dtype=np.float64)
        area = np.array([_is_object_area(n) for n in names])
        upper[area] = np.minimum(upper[area], crop_pixels)
        text += f"; object areas at most the crop's {crop_pixels:,} px"
    # The chosen cell's own values are always valid (it is a measured cell), even where it lies
    # outside the reference cells' range: the domain is widened to include them.
    return _Domain(np.minimum(lower, base), np.maximum(upper, base), source, text)


def _outside_reference(feature: str, requested: np.ndarray, reference: pd.DataFrame | None) -> np.ndarray | None:
    """Which requested values lie outside the reference cells' range (with a warning), or None."""
    if reference is None or feature not in reference.columns:
        return None
    ref = pd.to_numeric(reference[feature], errors="coerce").to_numpy(dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    if not ref.size:
        return None
    outside = (requested < ref.min()) | (requested > ref.max())
    if outside.any():
        warnings.warn(
            f"{int(outside.sum())} of {requested.size} requested {feature} values lie outside the range seen "
            f"in the reference cells ({ref.min():.4g} to {ref.max():.4g}); the model extrapolates there",
            OutsideReference, stacklevel=3,
        )
    return outside


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
        raise ValueError("mode='coupled' needs a model with normalisation statistics (model.feature_statistics); "
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


def _clip_reason(feature: str, asked: float, kept: float, lower: float, upper: float, domain_source: str | None,
                 crop_pixels: int | None = None) -> str:
    """'asked −1,360, used 22.1: below 0, the smallest value an area can take' style sentence."""
    physical = physical_bounds(feature)
    side = "below" if asked < lower else "above"
    edge = lower if asked < lower else upper
    if side == "above" and crop_pixels is not None and _is_object_area(feature) and edge == crop_pixels:
        why = f"above {edge:,.0f} px, the whole crop"
    elif edge == (physical[0] if side == "below" else physical[1]):
        why = f"{side} {edge:,.4g}, the {'smallest' if side == 'below' else 'largest'} value this measurement can take"
    else:
        why = f"{side} the valid range: {domain_source or 'the reference cells'}"
    return f"asked {asked:,.4g}, used {kept:,.4g} ({why})"

"""The result of a feature sweep (`PerturbationResult`) and its step captions.

Filled by `cp2image.analysis.perturb.sweep_feature` (requested values, profiles,
images, clipping) and `cp2image.analysis.measure_back.measure_result` (the values
measured on the images, slope and Spearman ρ).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

SweepMode = Literal["coupled", "single"]
SWEEP_MODES: dict[str, str] = {
    "coupled": "with its correlated features",
    "single": "this feature only",
}
"""Sweep modes and their plain-language names (CLI help, app labels)."""


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

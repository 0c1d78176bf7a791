"""Feature control: does a generated cell change by what the user asks for? (issue 13's table)

Each control feature is swept ±`span` SD on several held-out control cells, in each
sweep mode, and measured back. Per sweep: slope (measured change / requested
change) and Spearman ρ. Per feature and mode: their medians over cells. The
target, for the coupled mode, is median ρ ≥ `RHO_TARGET` **and** median slope ≥
`SLOPE_TARGET`: ρ alone reads 1.00 for a nucleus that grew by 3 % of what was asked.

Sweeps whose images mostly fail segmentation (fewer than `MIN_MEASURED_FRACTION`
of the steps measured: 7 of 9) say nothing about the model's response; they are
counted and left out of the medians.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cp2image.analysis.coupling import FeatureCoupling
from cp2image.analysis.perturb import Measurer, sweep_feature
from cp2image.analysis.space import ProfileModel

CONTROL_FEATURES: tuple[str, ...] = (
    # the paper's Fig. 4c rows: nucleus area, nucleus orientation, nucleus intensity, cytoplasm area
    "Nuclei_AreaShape_Area",
    "Nuclei_AreaShape_Orientation",
    "Nuclei_Intensity_MeanIntensity_DNA",
    "Cytoplasm_AreaShape_Area",
    # the whole cell, and one actin and one tubulin intensity feature
    "Cells_AreaShape_Area",
    "Cells_Intensity_MeanIntensity_Actin",
    "Cells_Intensity_MeanIntensity_Tubulin",
)
RHO_TARGET = 0.9
SLOPE_TARGET = 0.5
# Spearman ρ over n steps is a multiple of 6 / (n(n² − 1)), and the median of an even number of sweeps is the
# mean of two of them: exactly 0.9 on paper can land at 0.8999999999999999 in floating point. Targets are met
# within this tolerance, far below any step of ρ (1/120 for 9 steps).
TARGET_TOLERANCE = 1e-9
MIN_MEASURED_FRACTION = 0.75


@dataclass
class ControlConfig:
    """How the control table is measured."""

    features: tuple[str, ...] = CONTROL_FEATURES
    modes: tuple[str, ...] = ("coupled", "single")
    n_steps: int = 9  # images per sweep
    span_sd: float = 2.0  # ± this many SDs of the reference (control) cells
    # refine "this feature only" sweeps too, with the model's refinement (`model.refinement`; joint where its
    # `sweep_smoothness` > 0); off = as `sweep_feature` does by default (never refined). For the ablation.
    refine_single: bool = False


def control_sweeps(
    model: ProfileModel,
    cells: pd.DataFrame,
    *,
    reference: pd.DataFrame,
    coupling: FeatureCoupling | None,
    config: ControlConfig | None = None,
    measurer: Measurer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One row per (cell, feature, mode): slope, ρ, measured steps, clipped steps.

    `cells` are the cells swept (e.g. held-out DMSO cells); `reference` gives the SD
    unit and the reference range (e.g. the training DMSO cells). The coupled mode is
    skipped, with rows saying so, when `coupling` is None.
    """
    cfg = config or ControlConfig()
    names = list(model.feature_names)
    features = [f for f in cfg.features if f in names]
    rows = []
    total = len(cells) * len(features) * len(cfg.modes)
    done = 0
    for label, profile in cells.iterrows():
        for feature in features:
            for mode in cfg.modes:
                row = {"cell": label, "feature": feature, "mode": mode, "n_steps": cfg.n_steps}
                if mode == "coupled" and coupling is None:
                    row["note"] = "no feature coupling for this model"
                else:
                    refine = getattr(model, "refinement", None) if mode == "single" and cfg.refine_single else None
                    res = sweep_feature(model, profile, feature, mode=mode, coupling=coupling, n_steps=cfg.n_steps,
                                        span=cfg.span_sd, reference=reference, measurer=measurer, refine=refine)
                    measured = 0 if res.measured is None else int(np.isfinite(res.measured).sum())
                    row.update(slope=res.slope, spearman_rho=res.spearman_rho, n_measured=measured,
                               n_clipped=res.n_clipped, note=res.note or "")
                rows.append(row)
                done += 1
                if progress is not None:
                    progress(done, total)
    out = pd.DataFrame(rows, columns=["cell", "feature", "mode", "n_steps", "slope", "spearman_rho", "n_measured",
                                      "n_clipped", "note"])
    return out


def control_summary(sweeps: pd.DataFrame, *, min_measured_fraction: float = MIN_MEASURED_FRACTION) -> pd.DataFrame:
    """Per (feature, mode): median slope, median ρ, sweeps used/left out, and whether the target is met.

    `met` is evaluated for every mode (the target is stated for "coupled"); NaN
    medians (no usable sweep) never meet it.
    """
    rows = []
    for (feature, mode), g in sweeps.groupby(["feature", "mode"], sort=False):
        need = np.ceil(min_measured_fraction * g["n_steps"].to_numpy(dtype=float))
        ok = (g["n_measured"].fillna(0).to_numpy() >= need) & g["slope"].notna() & g["spearman_rho"].notna()
        used = g.loc[ok]
        slope = float(used["slope"].median()) if len(used) else float("nan")
        rho = float(used["spearman_rho"].median()) if len(used) else float("nan")
        rows.append({
            "feature": feature, "mode": mode, "median_slope": slope, "median_rho": rho,
            "n_sweeps": int(len(used)), "n_left_out": int(len(g) - len(used)),
            "clipped_steps": int(g["n_clipped"].fillna(0).sum()),
            "met": bool(np.isfinite(slope) and np.isfinite(rho) and rho >= RHO_TARGET - TARGET_TOLERANCE
                        and slope >= SLOPE_TARGET - TARGET_TOLERANCE),
        })
    return pd.DataFrame(rows)


def markdown(summary: pd.DataFrame, *, modes: Sequence[str] = ("coupled", "single")) -> str:
    """Feature rows × modes as "slope / ρ (n)", with the coupled target marked."""
    head = "| feature | " + " | ".join(f"{m}: slope / ρ (cells)" for m in modes) + " | coupled target met |"
    lines = [head, "|---" * (len(modes) + 2) + "|"]
    for feature, g in summary.groupby("feature", sort=False):
        cells = []
        for m in modes:
            r = g.loc[g["mode"] == m]
            if r.empty or not r["n_sweeps"].iloc[0]:
                cells.append("–")
                continue
            r = r.iloc[0]
            cells.append(f"{r['median_slope']:.2f} / {r['median_rho']:.2f} ({r['n_sweeps']})")
        coupled = g.loc[g["mode"] == "coupled"]
        met = "–" if coupled.empty or not coupled["n_sweeps"].iloc[0] else ("yes" if coupled["met"].iloc[0] else "no")
        lines.append(f"| {feature} | " + " | ".join(cells) + f" | {met} |")
    return "\n".join(lines)

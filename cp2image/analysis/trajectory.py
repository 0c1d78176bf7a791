"""PCA trajectory of a compound's dose response (paper Fig. 5b/c).

PCA (scikit-learn, 2 components) is fitted on the control cells plus every
concentration of one compound, after z-scoring each feature over those cells
(CP features have incomparable units; without it cell area in pixels would be PC1).
The "red line" runs from the control mean to one concentration's mean; because
z-scoring and PCA are affine, the straight line between the two means in the full
raw feature space is also a straight line between their projections, so every point
of the drawn line has an exact full-space profile the model can render.

PC1's sign is chosen so the highest dose lies to the right of the control (PCA signs
are arbitrary; this makes every plot read left → right with dose).

A clicked 2-D point (pc1, pc2) becomes a full profile by one of two documented methods
(`profile_at(..., method=)`):
- "residual" (default): the PCA inverse transform of the click plus the residual of the
  real cell nearest the click in PC space (its z-scored profile minus its own 2-PC
  reconstruction). The residual is orthogonal to both PCs, so the profile projects back
  exactly onto the click, and off-plane detail comes from a real cell, not from zeros.
- "line": the click is projected onto the DMSO→concentration line, t = ((q−a)·(b−a))/‖b−a‖²,
  and the full-space line point mean_control + t·(mean_end − mean_control) is used.

Geometry on the group means: the doses nearest a clicked place (`nearest_concentrations`,
whose real cells are shown beside the generated one) and the dose line's angle to PC1
(`line_angle_degrees`).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from cp2image.data.columns import COMPOUND, CONCENTRATION, feature_columns, metadata_columns

log = logging.getLogger(__name__)


def _fmt_conc(c: float) -> str:
    return f"{c:g} µM"


@dataclass
class CompoundTrajectory:
    """A fitted PCA of control + one compound's concentrations, with the dose line."""

    compound: str
    control: str
    features: list[str]
    scaler: StandardScaler = field(repr=False)
    pca: PCA = field(repr=False)
    cells: pd.DataFrame = field(repr=False)  # the fitted cells (original index), finite features only
    scores: pd.DataFrame = field(repr=False)  # PC1, PC2, group, concentration + Metadata_* (same index)
    group_means: pd.DataFrame = field(repr=False)  # one row per group: group, concentration, n_cells, PC1, PC2, features

    @classmethod
    def fit(
        cls,
        cells: pd.DataFrame,
        *,
        compound: str = "latrunculin B",
        control: str = "DMSO",
        features: Sequence[str] | None = None,
    ) -> "CompoundTrajectory":
        """Fit on the `control` cells and all concentrations of `compound` in `cells`.

        `features` defaults to every CellProfiler feature column of `cells`; pass the
        model's `feature_names` so line profiles can be fed straight to the model.
        """
        feats = _checked_features(cells, compound, control, features)
        subset, values, ctrl, conc = _fitted_cells(cells, compound, control, feats)
        scaler = StandardScaler().fit(values)
        scaled = scaler.transform(values)
        if not np.any(np.ptp(scaled, axis=0) > 0):
            raise ValueError("all fitted cells have identical features: the PCA is degenerate")
        pca = _dose_oriented_pca(scaled, ctrl, conc)
        pcs = pca.transform(scaled)
        scores = pd.DataFrame({"PC1": pcs[:, 0], "PC2": pcs[:, 1]}, index=subset.index)
        scores["group"] = np.where(ctrl, control, [f"{compound} {_fmt_conc(c)}" for c in conc])
        scores["concentration"] = conc
        for col in metadata_columns(subset):
            scores[col] = subset[col].to_numpy()
        group_means = _group_means(values, ctrl, conc, scaler, pca, feats, compound=compound, control=control)
        return cls(compound, control, feats, scaler, pca, subset, scores, group_means)

    # -- queries -------------------------------------------------------------------
    @property
    def concentrations(self) -> list[float]:
        """Compound concentrations present (µM, ascending), control excluded."""
        return [float(c) for c in self.group_means["concentration"] if c > 0]

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        return self.pca.explained_variance_ratio_

    def _group_row(self, concentration: float | None) -> pd.Series:
        c = 0.0 if concentration is None else float(concentration)
        hit = np.isclose(self.group_means["concentration"].to_numpy(), c, rtol=1e-6, atol=1e-9)
        if not hit.any():
            raise ValueError(
                f"no {self.compound!r} cells at {_fmt_conc(c)}; available: "
                f"{', '.join(_fmt_conc(x) for x in self.concentrations)} (0 = {self.control})"
            )
        return self.group_means.loc[hit].iloc[0]

    def mean_profile(self, concentration: float | None) -> pd.Series:
        """Raw mean profile of a group (None or 0 → the control)."""
        return self._group_row(concentration)[self.features].astype(np.float64)

    def project(self, profiles: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """PC1/PC2 of raw profiles (features by name for a frame, fitted order for an array)."""
        arr = profiles[self.features].to_numpy(np.float64) if isinstance(profiles, pd.DataFrame) else np.asarray(profiles, np.float64)
        pcs = self.pca.transform(self.scaler.transform(np.atleast_2d(arr)))
        return pd.DataFrame({"PC1": pcs[:, 0], "PC2": pcs[:, 1]})

    def line(self, n_points: int = 9, end_concentration: float = 3.0, *, t_max: float = 1.0) -> pd.DataFrame:
        """Points t ∈ [0, t_max] on the line control mean → `end_concentration` mean.

        Columns: t, PC1, PC2 and the full raw profile (the fitted features) at each point.
        """
        if n_points < 2:
            raise ValueError(f"n_points must be at least 2; got {n_points}")
        start = self.mean_profile(0.0).to_numpy()
        if float(end_concentration) == 0.0:
            raise ValueError("end_concentration must be a treated concentration, not the control")
        end = self.mean_profile(end_concentration).to_numpy()
        t = np.linspace(0.0, t_max, n_points)
        full = start[None, :] + t[:, None] * (end - start)[None, :]
        out = pd.DataFrame(full, columns=self.features)
        pcs = self.project(full)
        out.insert(0, "PC2", pcs["PC2"].to_numpy())
        out.insert(0, "PC1", pcs["PC1"].to_numpy())
        out.insert(0, "t", t)
        return out

    def line_parameter(self, pc1: float, pc2: float, end_concentration: float = 3.0) -> float:
        """t of the orthogonal projection of (pc1, pc2) onto the 2-D control→end line."""
        a = self._group_row(0.0)[["PC1", "PC2"]].to_numpy(np.float64)
        b = self._group_row(end_concentration)[["PC1", "PC2"]].to_numpy(np.float64)
        ab = b - a
        denom = float(ab @ ab)
        if denom == 0:
            raise ValueError("the control and end means project onto the same PCA point; the line is degenerate")
        return float((np.array([pc1, pc2]) - a) @ ab / denom)

    def profile_at(
        self,
        pc1: float,
        pc2: float,
        *,
        method: Literal["residual", "line"] = "residual",
        end_concentration: float = 3.0,
    ) -> pd.Series:
        """Full raw profile for a 2-D PCA point (see module docstring for both methods).

        The Series' `attrs` record the method, and `t` (line) or `nearest` (residual:
        index label of the real cell whose residual was used).
        """
        if not (np.isfinite(pc1) and np.isfinite(pc2)):
            raise ValueError(f"PCA point must be finite; got ({pc1}, {pc2})")
        if method == "line":
            t = self.line_parameter(pc1, pc2, end_concentration)
            start = self.mean_profile(0.0).to_numpy()
            end = self.mean_profile(end_concentration).to_numpy()
            out = pd.Series(start + t * (end - start), index=self.features, name=f"PC ({pc1:.3g}, {pc2:.3g})")
            out.attrs.update(method="line", t=t)
            return out
        if method != "residual":
            raise ValueError(f"method must be 'residual' or 'line'; got {method!r}")
        pcs = self.scores[["PC1", "PC2"]].to_numpy(np.float64)
        k = int(np.argmin(((pcs - np.array([pc1, pc2])) ** 2).sum(axis=1)))
        scaled_real = self.scaler.transform(self.cells[self.features].to_numpy(np.float64)[k: k + 1])[0]
        residual = scaled_real - self.pca.inverse_transform(pcs[k: k + 1])[0]
        scaled = self.pca.inverse_transform(np.array([[pc1, pc2]]))[0] + residual
        out = pd.Series(self.scaler.inverse_transform(scaled[None])[0], index=self.features,
                        name=f"PC ({pc1:.3g}, {pc2:.3g})")
        out.attrs.update(method="residual", nearest=self.scores.index[k])
        return out

    def real_examples(self, concentration: float | None, n: int = 1, *, seed: int = 0) -> list:
        """Index labels (in the fitted cells) of `n` random real cells at a concentration (0/None = control)."""
        if n < 1:
            raise ValueError(f"n must be at least 1; got {n}")
        c = self._group_row(concentration)["concentration"]
        labels = self.scores.index[np.isclose(self.scores["concentration"].to_numpy(), c, rtol=1e-6, atol=1e-9)]
        if len(labels) < n:
            log.info("only %d cells at %s; returning all", len(labels), _fmt_conc(c))
        rng = np.random.default_rng(seed)
        picked = rng.choice(len(labels), size=min(n, len(labels)), replace=False)
        return [labels[i] for i in sorted(picked)]


def _checked_features(cells: pd.DataFrame, compound: str, control: str, features: Sequence[str] | None) -> list[str]:
    """The fitted feature list, after checking the compound, control and features are all there."""
    if COMPOUND not in cells.columns:
        raise ValueError(f"cells need a {COMPOUND} column to find {compound!r} and {control!r}")
    feats = list(features) if features is not None else feature_columns(cells)
    missing = [f for f in feats if f not in cells.columns]
    if missing:
        raise ValueError(f"cells lack {len(missing)} requested features: {', '.join(missing[:10])}")
    if len(feats) < 2:
        raise ValueError(f"a 2-component PCA needs at least 2 features; got {len(feats)}")
    compounds = cells[COMPOUND].astype(str)
    present = ", ".join(sorted(compounds.unique())[:20])
    if not (compounds == control).any():
        raise ValueError(f"no cells for the control {control!r}; compounds present: {present}")
    if not (compounds == compound).any():
        raise ValueError(f"no cells for compound {compound!r}; compounds present: {present}")
    if compound == control:
        raise ValueError(f"compound and control are both {control!r}: a PCA of one group is degenerate")
    if CONCENTRATION not in cells.columns:
        raise ValueError(f"cells need a {CONCENTRATION} column (µM) to separate {compound!r} doses")
    return feats


def _fitted_cells(cells: pd.DataFrame, compound: str, control: str,
                  feats: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Control + compound cells with finite features: (rows, values, is-control, concentration with control = 0)."""
    compounds = cells[COMPOUND].astype(str)
    subset = cells.loc[(compounds == control) | (compounds == compound)]
    values = subset[feats].to_numpy(dtype=np.float64)
    finite = np.all(np.isfinite(values), axis=1)
    if not finite.all():
        log.info("dropping %d cells with non-finite features before PCA", int((~finite).sum()))
    subset = subset.loc[finite].copy()
    values = values[finite]
    ctrl = (subset[COMPOUND].astype(str) == control).to_numpy()
    if ctrl.all() or not ctrl.any():
        raise ValueError(
            f"after dropping non-finite rows only one group is left ({'control' if ctrl.all() else compound}); "
            "a PCA trajectory needs the control and at least one concentration"
        )
    conc = pd.to_numeric(subset[CONCENTRATION], errors="coerce").to_numpy(dtype=np.float64)
    conc = np.where(ctrl, 0.0, conc)
    if np.isnan(conc).any():
        raise ValueError(f"{compound!r} cells have missing {CONCENTRATION}")
    if len(subset) < 3:
        raise ValueError(f"a PCA trajectory needs at least 3 cells; got {len(subset)}")
    return subset, values, ctrl, conc


def _dose_oriented_pca(scaled: np.ndarray, ctrl: np.ndarray, conc: np.ndarray) -> PCA:
    """2-component PCA with PC1 signed so the highest dose lies right of the control."""
    pca = PCA(n_components=2, svd_solver="covariance_eigh").fit(scaled)  # exact; fast for n ≫ p
    top = conc == conc.max()
    if pca.transform(scaled[top].mean(axis=0, keepdims=True))[0, 0] < pca.transform(
            scaled[ctrl].mean(axis=0, keepdims=True))[0, 0]:
        pca.components_[0] *= -1
    return pca


def _group_means(values: np.ndarray, ctrl: np.ndarray, conc: np.ndarray, scaler: StandardScaler, pca: PCA,
                 feats: list[str], *, compound: str, control: str) -> pd.DataFrame:
    """One row per concentration (control first): group, concentration, n_cells, PC1, PC2, mean raw features."""
    rows = []
    for c in np.unique(conc):
        m = conc == c
        mean = values[m].mean(axis=0)
        p = pca.transform(scaler.transform(mean[None]))[0]
        rows.append(
            {"group": control if c == 0 and ctrl[m].all() else f"{compound} {_fmt_conc(c)}",
             "concentration": float(c), "n_cells": int(m.sum()), "PC1": p[0], "PC2": p[1],
             **dict(zip(feats, mean))}
        )
    return pd.DataFrame(rows).sort_values("concentration").reset_index(drop=True)


def nearest_concentrations(group_means: pd.DataFrame, pc1: float, pc2: float, *, k: int = 2) -> list[float]:
    """Concentrations of the `k` groups whose means lie nearest (pc1, pc2) in PC1/PC2, nearest first.

    `group_means` is `CompoundTrajectory.group_means` (0 = the control). Why: the real cells
    shown beside a cell generated at a clicked place come from the doses nearest that place.
    """
    for column in ("PC1", "PC2", "concentration"):
        if column not in group_means.columns:
            raise ValueError(f"group_means needs a {column!r} column")
    if len(group_means) == 0:
        raise ValueError("no groups to compare with")
    d = np.hypot(group_means["PC1"].to_numpy(float) - pc1, group_means["PC2"].to_numpy(float) - pc2)
    order = np.argsort(d, kind="stable")[: max(1, k)]
    return [float(c) for c in group_means["concentration"].to_numpy()[order]]


def line_angle_degrees(group_means: pd.DataFrame, end_concentration: float) -> float:
    """Angle (0–90°) between the PC1 axis and the line from the control mean to `end_concentration`'s mean.

    0° means the dose response lies along PC1, 90° along PC2 (axes at equal scale).
    `group_means` is `CompoundTrajectory.group_means` (0 = the control).
    """
    control = group_means.loc[group_means["concentration"] == 0]
    end = group_means.loc[np.isclose(group_means["concentration"].astype(float), float(end_concentration))]
    if control.empty or end.empty:
        raise ValueError(f"group_means lacks the control or the {end_concentration:g} µM group")
    d1 = float(end["PC1"].iloc[0] - control["PC1"].iloc[0])
    d2 = float(end["PC2"].iloc[0] - control["PC2"].iloc[0])
    return math.degrees(math.atan2(abs(d2), abs(d1)))


@dataclass(frozen=True)
class LineResponse:
    """How the images generated along a dose line moved, feature by feature, against the line's request.

    `table` has, per feature, the requested and the measured change from the line's first to
    its last point in control-cell SDs; `summary` counts the features asked to move by more
    than `min_sd` and how many moved the right way. Why: the line panel shows the pictures,
    this says how much of the drug's profile change they carry.
    """

    table: pd.DataFrame
    min_sd: float

    @property
    def asked(self) -> pd.DataFrame:
        return self.table.loc[self.table["asked_sd"].abs() > self.min_sd]

    def summary(self) -> dict[str, float]:
        asked = self.asked
        right = np.sign(asked["asked_sd"]) == np.sign(asked["measured_sd"])
        return {"features_asked": int(len(asked)), "right_way": float(right.mean()) if len(asked) else float("nan"),
                "median_measured_over_asked": float(np.nanmedian(asked["measured_sd"] / asked["asked_sd"]))
                if len(asked) else float("nan")}


def line_response(requested: pd.DataFrame, measured: pd.DataFrame, control: pd.DataFrame, *,
                  min_sd: float = 0.5) -> LineResponse:
    """Compare the first → last change of `requested` profiles with that `measured` on their images.

    Changes are in SDs of `control` (e.g. the DMSO cells); features constant in the control
    or missing from the measurement are left out.
    """
    features = [f for f in requested.columns if f in measured.columns and f in control.columns]
    sd = control[features].std().replace(0.0, np.nan)
    asked = (requested[features].iloc[-1] - requested[features].iloc[0]) / sd
    got = (measured[features].iloc[-1] - measured[features].iloc[0]) / sd
    table = pd.DataFrame({"asked_sd": asked, "measured_sd": got}).dropna()
    return LineResponse(table=table, min_sd=min_sd)

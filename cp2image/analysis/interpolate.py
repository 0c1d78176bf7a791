"""MoA interpolation (paper section 4.2.3, Fig. 5a): walk a DMSO cell to a target cell.

Exactly as the paper: the start is the real control (DMSO) cell closest to the
control group's mean profile, the end the real cell closest to the target MoA's
mean profile; each step replaces the `dims_per_step` (50) features with the largest
absolute difference by the target's values, so there are ceil(p / 50) steps.

Which space. Distances, means and "largest absolute difference" are taken in the
model's normalised feature space (`space.feature_space`: the model's own input
normalisation, else robust z-scores against the control cells), because raw CP
features have incomparable units. Replacing a feature by the target value is the
same operation in raw and normalised units (the map is per-feature affine).

The reported `cosine` is the cosine similarity to the target in that normalised
space *with the origin at the start (DMSO) cell*: cos(z_k − x, y − x) where x is the
start, y the target and z_k step k. Since z_k − x equals y − x on the replaced
features and 0 elsewhere, cos = ‖(y−x)_{S_k}‖ / ‖y−x‖, which can only grow as S_k
grows, reaches 1 when every feature is replaced, and grows fastest exactly because
the largest differences go first (the paper's choice). The plain cosine with the
origin at the normalisation centre (`cosine_uncentred`, also reported) can *fall*
when a replaced feature moves the profile away from the target's direction
(e.g. x = (−1, 5), y = (1, 1): replacing the larger difference drops it from 0.55
to 0), so it cannot carry the paper's "never decreases" claim. Because the start is
the control cell nearest the control mean, and the normalised space is centred on
the controls, the two origins nearly coincide in practice.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cp2image.analysis.space import FeatureSpace, ProfileModel, feature_space, profile_matrix

log = logging.getLogger(__name__)

COSINE_SPACE = "normalised feature space, origin at the start (control) cell: cos(z - x, y - x)"


@dataclass
class InterpolationResult:
    """Profiles, cosines and images along the control → target walk (step 0 = start)."""

    profiles: pd.DataFrame  # (K+1, p) raw model features; row 0 the start cell, row K the target
    cosine: np.ndarray  # (K+1,) cosine to the target, see COSINE_SPACE; 0 at step 0, 1 at step K
    cosine_uncentred: np.ndarray  # (K+1,) plain cosine in the normalised space (may decrease)
    images: np.ndarray | None  # (K+1, 3, H, W) generated; None when generate=False
    source_row: object  # index label in `cells` of the start (control) cell
    target_row: object  # index label in `cells` of the target cell
    replaced: list[list[str]]  # features replaced at each step (empty list for step 0)
    target_moa: str
    control: str
    dims_per_step: int
    space: FeatureSpace = field(repr=False)
    cosine_space: str = COSINE_SPACE
    source_image: np.ndarray | None = None  # real crop (3, H, W) of the start cell when real_images given
    target_image: np.ndarray | None = None  # real crop of the target cell

    @property
    def n_steps(self) -> int:
        """Number of replacement steps, ceil(p / dims_per_step)."""
        return len(self.profiles) - 1

    def table(self) -> pd.DataFrame:
        """One row per step: step, features replaced so far, cosine, plain cosine, replaced names."""
        counts = np.cumsum([len(r) for r in self.replaced])
        return pd.DataFrame(
            {
                "step": np.arange(len(self.profiles)),
                "n_replaced": counts,
                "cosine": self.cosine,
                "cosine_uncentred": self.cosine_uncentred,
                "replaced_features": [";".join(r) for r in self.replaced],
            }
        )


def _group_mask(cells: pd.DataFrame, value: str, columns: tuple[str, ...]) -> pd.Series:
    for col in columns:
        if col in cells.columns:
            return cells[col].astype(str) == value
    raise ValueError(f"cells need one of the columns {list(columns)} to find the group {value!r}")


def _available(cells: pd.DataFrame, column: str) -> str:
    if column not in cells.columns:
        return "(no such column)"
    vals = sorted(map(str, cells[column].dropna().unique()))
    return ", ".join(vals[:20]) + (" ..." if len(vals) > 20 else "")


def closest_to_mean(normalised: np.ndarray) -> int:
    """Position of the row nearest (Euclidean) to the rows' mean."""
    centre = normalised.mean(axis=0)
    return int(np.argmin(((normalised - centre) ** 2).sum(axis=1)))


def replacement_schedule(x: np.ndarray, y: np.ndarray, dims_per_step: int) -> list[np.ndarray]:
    """Feature positions replaced at each step: largest |y − x| first, `dims_per_step` at a time.

    Ties keep model order (stable sort), so the schedule is deterministic.
    """
    order = np.argsort(-np.abs(y - x), kind="stable")
    return [order[i: i + dims_per_step] for i in range(0, len(order), dims_per_step)]


def cosine_to_target(z: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """cos(z_k − x, y − x) per row of z (K+1, p); 0 where z_k = x, all 1 if y = x."""
    d = y - x
    norm_d = np.linalg.norm(d)
    if norm_d == 0:
        return np.ones(len(z))
    u = z - x
    norm_u = np.linalg.norm(u, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (u @ d) / (norm_u * norm_d)
    return np.clip(np.where(norm_u > 0, cos, 0.0), -1.0, 1.0)


def plain_cosine(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """cos(z_k, y) per row; NaN where a vector is zero."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (z @ y) / (np.linalg.norm(z, axis=1) * np.linalg.norm(y))


def interpolate_to_moa(
    model: ProfileModel,
    cells: pd.DataFrame,
    *,
    target_moa: str,
    control: str = "DMSO",
    dims_per_step: int = 50,
    source_index: object | None = None,
    target_index: object | None = None,
    space: FeatureSpace | None = None,
    real_images: np.ndarray | None = None,
    generate: bool = True,
    batch_size: int = 256,
) -> InterpolationResult:
    """Interpolate from the control cell nearest its group mean to the target-MoA cell nearest its mean.

    `cells` holds raw profiles with the model's feature columns plus `Metadata_MoA`
    (and `Metadata_Compound` for the control; without it the control is found by
    MoA). `source_index`/`target_index` (labels in `cells`) override the automatic
    choice. `real_images` (aligned with `cells` rows by position) fills the real
    start/target crops for the first and last columns of a Fig. 5a panel.
    """
    if dims_per_step < 1:
        raise ValueError(f"dims_per_step must be at least 1; got {dims_per_step}")
    if target_moa == control:
        raise ValueError(f"target_moa and control are both {control!r}; choose a treatment MoA")
    names = list(model.feature_names)
    missing = [f for f in names if f not in cells.columns]
    if missing:
        profile_matrix(cells.iloc[:0], names)  # raises the standard "lacks N features" error
    control_rows = _group_mask(cells, control, ("Metadata_Compound", "Metadata_MoA")).to_numpy()
    target_rows = _group_mask(cells, target_moa, ("Metadata_MoA",)).to_numpy()
    if source_index is not None and source_index in cells.index:
        control_rows = control_rows | cells.index.isin([source_index])
    if target_index is not None and target_index in cells.index:
        target_rows = target_rows | cells.index.isin([target_index])
    used = np.flatnonzero(control_rows | target_rows)  # only these rows are read: big tables stay cheap
    x_used = cells.iloc[used][names].to_numpy(dtype=np.float64)
    finite = np.zeros(len(cells), dtype=bool)
    finite[used] = np.all(np.isfinite(x_used), axis=1)
    if not finite[used].all():
        log.info("ignoring %d cells with non-finite features", int((~finite[used]).sum()))
    x_all = np.full((len(cells), len(names)), np.nan)
    x_all[used] = x_used

    control_mask = _group_mask(cells, control, ("Metadata_Compound", "Metadata_MoA")).to_numpy() & finite
    target_mask = _group_mask(cells, target_moa, ("Metadata_MoA",)).to_numpy() & finite
    if not control_mask.any():
        raise ValueError(
            f"no cells (with finite features) for the control {control!r}; compounds present: "
            f"{_available(cells, 'Metadata_Compound')}"
        )
    if not target_mask.any():
        raise ValueError(
            f"no cells (with finite features) for MoA {target_moa!r}; MoAs present: {_available(cells, 'Metadata_MoA')}"
        )
    space = space or feature_space(model, cells.loc[control_mask])
    norm = np.full_like(x_all, np.nan)
    norm[used] = space.transform(x_used)  # (N, p); NaN outside the two groups

    def pick(mask: np.ndarray, label: object | None, what: str) -> int:
        if label is None:
            positions = np.flatnonzero(mask)
            return int(positions[closest_to_mean(norm[positions])])
        if label not in cells.index:
            raise ValueError(f"{what} {label!r} is not an index label of cells")
        pos = cells.index.get_loc(label)
        if not isinstance(pos, (int, np.integer)):
            raise ValueError(f"{what} {label!r} is not a unique index label of cells")
        if not finite[pos]:
            raise ValueError(f"{what} {label!r} has non-finite features")
        return int(pos)

    src = pick(control_mask, source_index, "source_index")
    tgt = pick(target_mask, target_index, "target_index")
    x, y = norm[src], norm[tgt]

    schedule = replacement_schedule(x, y, dims_per_step)
    assert len(schedule) == math.ceil(len(names) / dims_per_step)
    steps_norm = [x.copy()]
    for idx in schedule:
        z = steps_norm[-1].copy()
        z[idx] = y[idx]
        steps_norm.append(z)
    z = np.stack(steps_norm)  # (K+1, p)
    raw = x_all[src].copy()
    raw_steps = [raw.copy()]
    for idx in schedule:
        raw[idx] = x_all[tgt, idx]
        raw_steps.append(raw.copy())
    profiles = pd.DataFrame(np.stack(raw_steps), columns=names)

    images = np.asarray(model.generate(profiles, batch_size=batch_size)) if generate else None
    result = InterpolationResult(
        profiles=profiles,
        cosine=cosine_to_target(z, x, y),
        cosine_uncentred=plain_cosine(z, y),
        images=images,
        source_row=cells.index[src],
        target_row=cells.index[tgt],
        replaced=[[]] + [[names[i] for i in idx] for idx in schedule],
        target_moa=target_moa,
        control=control,
        dims_per_step=dims_per_step,
        space=space,
    )
    if real_images is not None:
        if len(real_images) != len(cells):
            raise ValueError(f"real_images has {len(real_images)} crops for {len(cells)} cells; they must align by row")
        result.source_image = np.asarray(real_images[src])
        result.target_image = np.asarray(real_images[tgt])
    return result

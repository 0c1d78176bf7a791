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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cp2image.analysis.space import FeatureSpace, ProfileModel, drawn, feature_space, profile_matrix
from cp2image.data.columns import COMPOUND, MOA

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


@dataclass
class _WalkEnds:
    """The two groups of an interpolation, read once: their raw and normalised profiles and finiteness."""

    raw: np.ndarray  # (N, p) raw model features; NaN outside the rows read
    norm: np.ndarray  # (N, p) the same in the normalised space
    finite: np.ndarray  # (N,) all features finite (False outside the rows read)
    control: np.ndarray  # (N,) control-group cells with finite features
    target: np.ndarray  # (N,) target-MoA cells with finite features
    space: FeatureSpace


def _walk_ends(model: ProfileModel, cells: pd.DataFrame, names: list[str], *, target_moa: str, control: str,
               extra: list[object], space: FeatureSpace | None) -> _WalkEnds:
    """Find the control and target groups and read only their rows (plus `extra` labels): big tables stay cheap."""
    control_group = _group_mask(cells, control, (COMPOUND, MOA)).to_numpy()
    target_group = _group_mask(cells, target_moa, (MOA,)).to_numpy()
    read = control_group | target_group | cells.index.isin([e for e in extra if e is not None and e in cells.index])
    used = np.flatnonzero(read)
    x_used = cells.iloc[used][names].to_numpy(dtype=np.float64)
    finite = np.zeros(len(cells), dtype=bool)
    finite[used] = np.all(np.isfinite(x_used), axis=1)
    if not finite[used].all():
        log.info("ignoring %d cells with non-finite features", int((~finite[used]).sum()))
    control_mask, target_mask = control_group & finite, target_group & finite
    if not control_mask.any():
        raise ValueError(
            f"no cells (with finite features) for the control {control!r}; compounds present: "
            f"{_available(cells, COMPOUND)}"
        )
    if not target_mask.any():
        raise ValueError(
            f"no cells (with finite features) for MoA {target_moa!r}; MoAs present: {_available(cells, MOA)}"
        )
    space = space or feature_space(model, cells.loc[control_mask])
    raw = np.full((len(cells), len(names)), np.nan)
    raw[used] = x_used
    norm = np.full_like(raw, np.nan)
    norm[used] = space.transform(x_used)
    return _WalkEnds(raw=raw, norm=norm, finite=finite, control=control_mask, target=target_mask, space=space)


def _pick(cells: pd.DataFrame, ends: _WalkEnds, mask: np.ndarray, label: object | None, what: str) -> int:
    """Position of `label` in `cells`, or of the `mask` cell nearest its group's mean when None."""
    if label is None:
        positions = np.flatnonzero(mask)
        return int(positions[closest_to_mean(ends.norm[positions])])
    if label not in cells.index:
        raise ValueError(f"{what} {label!r} is not an index label of cells")
    pos = cells.index.get_loc(label)
    if not isinstance(pos, (int, np.integer)):
        raise ValueError(f"{what} {label!r} is not a unique index label of cells")
    if not ends.finite[pos]:
        raise ValueError(f"{what} {label!r} has non-finite features")
    return int(pos)


def _walk(x: np.ndarray, y: np.ndarray, schedule: list[np.ndarray]) -> np.ndarray:
    """(K+1, p) profiles: start at x, then at each step copy the scheduled features from y."""
    steps = [x.copy()]
    for idx in schedule:
        z = steps[-1].copy()
        z[idx] = y[idx]
        steps.append(z)
    return np.stack(steps)


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
    refine: bool = False,
) -> InterpolationResult:
    """Interpolate from the control cell nearest its group mean to the target-MoA cell nearest its mean.

    `cells` holds raw profiles with the model's feature columns plus `Metadata_MoA`
    (and `Metadata_Compound` for the control; without it the control is found by
    MoA). `source_index`/`target_index` (labels in `cells`) override the automatic
    choice. `real_images` (aligned with `cells` rows by position) fills the real
    start/target crops for the first and last columns of a Fig. 5a panel. Images are the
    generator's as drawn unless `refine=True` (critic refinement, `analysis.space.drawn`).
    """
    if dims_per_step < 1:
        raise ValueError(f"dims_per_step must be at least 1; got {dims_per_step}")
    if target_moa == control:
        raise ValueError(f"target_moa and control are both {control!r}; choose a treatment MoA")
    names = list(model.feature_names)
    if any(f not in cells.columns for f in names):
        profile_matrix(cells.iloc[:0], names)  # raises the standard "lacks N features" error
    if real_images is not None and len(real_images) != len(cells):
        raise ValueError(f"real_images has {len(real_images)} crops for {len(cells)} cells; they must align by row")
    ends = _walk_ends(model, cells, names, target_moa=target_moa, control=control,
                      extra=[source_index, target_index], space=space)
    src = _pick(cells, ends, ends.control, source_index, "source_index")
    tgt = _pick(cells, ends, ends.target, target_index, "target_index")
    x, y = ends.norm[src], ends.norm[tgt]
    schedule = replacement_schedule(x, y, dims_per_step)
    z = _walk(x, y, schedule)  # the same replacements in normalised and in raw units (the map is per-feature affine)
    profiles = pd.DataFrame(_walk(ends.raw[src], ends.raw[tgt], schedule), columns=names)
    result = InterpolationResult(
        profiles=profiles,
        cosine=cosine_to_target(z, x, y),
        cosine_uncentred=plain_cosine(z, y),
        images=np.asarray(model.generate(profiles, batch_size=batch_size, **drawn(model, refine))) if generate else None,
        source_row=cells.index[src],
        target_row=cells.index[tgt],
        replaced=[[]] + [[names[i] for i in idx] for idx in schedule],
        target_moa=target_moa,
        control=control,
        dims_per_step=dims_per_step,
        space=ends.space,
    )
    if real_images is not None:
        result.source_image = np.asarray(real_images[src])
        result.target_image = np.asarray(real_images[tgt])
    return result

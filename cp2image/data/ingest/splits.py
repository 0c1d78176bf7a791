"""`Metadata_Split` for ingested cells: by well, or by whole plate covering the MoAs."""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from cp2image.data.splits import assign_splits_by_well

SplitBy = Literal["well", "plate"]
SPLIT_BY: tuple[str, ...] = ("well", "plate")


def assign_splits(
    cells: pd.DataFrame, *, by: SplitBy, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> pd.Series:
    """`Metadata_Split` by well (default) or by whole plate (see `assign_plate_splits`)."""
    if by not in SPLIT_BY:
        raise ValueError(f"split_by must be one of {SPLIT_BY}, got {by!r}")
    if by == "well":
        return assign_splits_by_well(cells, fractions=fractions, seed=seed)
    return assign_plate_splits(cells, seed=seed, fractions=fractions)


def assign_plate_splits(
    cells: pd.DataFrame, *, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> pd.Series:
    """Whole plates to train/val/test, chosen so the held-out plates cover as many MoAs as they can.

    Real screens are uneven: in the shared BBBC021 crops most plates carry a
    different mix of compounds, and one plate holds all the cycloheximide. So
    plates are not drawn blindly. For test, then val:

    1. MoAs (compounds when there is no ``Metadata_MoA``) are visited from the one
       on fewest plates to the one on most; for each not yet covered by the
       split, the first plate (in a `seed`-shuffled order) that carries it and
       may be held out joins the split.
    2. Further plates join while that brings the split's cell count closer to
       its fraction of all cells.

    A plate may be held out only if every compound on it keeps at least one
    training plate and at least half of its plates in train, so a plate carrying
    a compound no other plate has (BBBC021's cycloheximide plate, say) always
    stays in train, the model has seen every compound it is judged on, and a
    compound on three plates (latrunculin B) loses at most one to evaluation.
    No plate spans two splits.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    plate = cells["Metadata_Plate"].astype(str)
    compounds = cells["Metadata_Compound"].astype(str).groupby(plate).agg(lambda c: frozenset(c))
    unit = cells["Metadata_MoA"] if "Metadata_MoA" in cells.columns else cells["Metadata_Compound"]
    units = unit.where(unit.notna(), cells["Metadata_Compound"]).astype(str).groupby(plate).agg(frozenset)
    sizes = plate.value_counts()
    rng = np.random.default_rng(seed)
    order = [str(p) for p in rng.permutation(sorted(compounds.index))]
    split = {p: "train" for p in order}
    n_plates = {c: sum(c in compounds[p] for p in order) for c in set().union(*compounds)}
    train_plates = dict(n_plates)

    def may_hold_out(p: str) -> bool:  # every compound on p keeps ≥ 1 and ≥ half of its plates in train
        return split[p] == "train" and all(
            train_plates[c] - 1 >= max(1, n_plates[c] / 2) for c in compounds[p])

    def hold_out(p: str, name: str) -> None:
        split[p] = name
        for c in compounds[p]:
            train_plates[c] -= 1

    rarity = sorted(set().union(*units), key=lambda u: (sum(u in units[p] for p in order), u))
    for name, fraction in (("test", fractions[2]), ("val", fractions[1])):
        if fraction == 0:
            continue
        covered: set[str] = set()
        for u in rarity:
            if u in covered:
                continue
            pick = next((p for p in order if u in units[p] and may_hold_out(p)), None)
            if pick is not None:
                hold_out(pick, name)
                covered |= units[pick]
        target = fraction * len(cells)
        held = sum(sizes[p] for p in order if split[p] == name)
        for p in order:
            if may_hold_out(p) and abs(held + sizes[p] - target) < abs(held - target):
                hold_out(p, name)
                held += sizes[p]
    return pd.Series(plate.map(split).to_numpy(), index=cells.index, name="Metadata_Split")


def split_counts(splits: pd.Series) -> dict[str, int]:
    counts = splits.value_counts()
    return {name: int(counts.get(name, 0)) for name in ("train", "val", "test")}



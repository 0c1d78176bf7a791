"""Plate layout of the virtual BBBC021 screen: which treatment goes into which well.

Like BBBC021 (Caie et al. 2010), each plate holds 60 wells (rows B–G, columns
02–11) with DMSO vehicle wells on every plate, and each treatment is repeated on
several plates (replicates). Treatments are real BBBC021 compounds at real BBBC021
concentrations (µM): at least one compound for each of the 12 MoAs at three or more
concentrations, latrunculin B at four (0.1, 0.3, 1 and 3 µM, the paper's Fig. 5c),
plus two secondary compounds at their annotated concentrations. Positions are
shuffled per plate with the screen seed; cells are shared equally between wells.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cp2image.data.simulate.phenotypes import COMPOUNDS, MOAS

PLATE_ROWS: tuple[str, ...] = ("B", "C", "D", "E", "F", "G")
PLATE_COLUMNS: tuple[int, ...] = tuple(range(2, 12))
WELLS_PER_PLATE = len(PLATE_ROWS) * len(PLATE_COLUMNS)

# compound → concentrations (µM), all taken from BBBC021_v1_image.csv / BBBC021_v1_moa.csv
SCREEN_CONCENTRATIONS: dict[str, tuple[float, ...]] = {
    "latrunculin B": (0.1, 0.3, 1.0, 3.0),
    "cytochalasin B": (10.0, 30.0),
    "AZ258": (0.1, 0.3, 1.0),
    "mevinolin/lovastatin": (1.5, 5.0, 15.0),
    "etoposide": (1.0, 3.0, 10.0),
    "camptothecin": (0.003, 0.01, 0.03),
    "AZ138": (0.1, 0.3, 1.0),
    "AZ-J": (1.0, 3.0, 10.0),
    "PD-169316": (1.0, 3.0, 10.0),
    "demecolcine": (0.3, 1.0, 3.0),
    "taxol": (0.3, 1.0, 3.0),
    "MG-132": (0.1, 1.0, 3.0),
    "emetine": (0.1, 0.3, 1.0),
    "cyclohexamide": (5.0, 15.0, 50.0),
}


@dataclass(frozen=True)
class Treatment:
    compound: str  # BBBC021 spelling
    concentration: float  # µM; 0 for DMSO
    moa: str


@dataclass(frozen=True)
class WellPlan:
    """One well to simulate; `index` orders wells in the output dataset."""

    index: int
    plate_index: int
    plate: str
    well: str
    replicate: int
    treatment: Treatment
    n_cells: int


@dataclass(frozen=True)
class ScreenConfig:
    """Size and layout of a simulated screen."""

    n_cells: int  # total cells in the dataset (shared equally between wells)
    seed: int = 0  # every random choice derives from this
    replicates: int = 3  # plates; each holds one well of every treatment
    dmso_wells_per_plate: int = 6  # as in BBBC021
    sites_per_well: int = 4  # fields per well at least (BBBC021 images 4 sites); cells spread over them
    compounds: tuple[str, ...] | None = None  # a subset of SCREEN_CONCENTRATIONS; None = the full screen

    def __post_init__(self) -> None:
        if self.compounds is not None:
            unknown = sorted(set(self.compounds) - set(SCREEN_CONCENTRATIONS))
            if unknown:
                raise ValueError(f"unknown screen compound(s) {unknown}; choose from {sorted(SCREEN_CONCENTRATIONS)}")
        if self.n_cells < 1:
            raise ValueError(f"n_cells must be >= 1, got {self.n_cells}")
        if self.replicates < 1:
            raise ValueError(f"replicates must be >= 1, got {self.replicates}")
        if self.sites_per_well < 1:
            raise ValueError(f"sites_per_well must be >= 1, got {self.sites_per_well}")
        if self.dmso_wells_per_plate < 1:
            raise ValueError("every plate needs at least one DMSO well (dmso_wells_per_plate >= 1)")
        used = len(screen_treatments(self.compounds)) + self.dmso_wells_per_plate
        if used > WELLS_PER_PLATE:
            raise ValueError(f"{used} wells per plate needed but a plate has {WELLS_PER_PLATE}")


def screen_treatments(compounds: tuple[str, ...] | None = None) -> list[Treatment]:
    """Every non-DMSO treatment of the screen (or of `compounds`), in table order."""
    out = []
    for name, concs in SCREEN_CONCENTRATIONS.items():
        if compounds is not None and name not in compounds:
            continue
        moa = COMPOUNDS[name].moa
        out.extend(Treatment(name, float(c), moa) for c in concs)
    return out


def _check_coverage(treatments: list[Treatment]) -> None:
    """Fail loudly if an edit to the tables drops an MoA or a latrunculin B dose."""
    for moa in MOAS:
        per_compound: dict[str, set[float]] = {}
        for t in treatments:
            if t.moa == moa:
                per_compound.setdefault(t.compound, set()).add(t.concentration)
        if not per_compound or max(len(v) for v in per_compound.values()) < 3:
            raise AssertionError(f"screen table: MoA {moa!r} lacks a compound at >= 3 concentrations")


def plan_screen(config: ScreenConfig) -> list[WellPlan]:
    """All wells of the screen, plate by plate, with their treatment and cell quota."""
    treatments = screen_treatments(config.compounds)
    if config.compounds is None:
        _check_coverage(treatments)
    dmso = Treatment("DMSO", 0.0, "DMSO")
    well_names = [f"{r}{c:02d}" for r in PLATE_ROWS for c in PLATE_COLUMNS]
    rng = np.random.default_rng([config.seed, 7919])
    per_plate = treatments + [dmso] * config.dmso_wells_per_plate
    n_wells = config.replicates * len(per_plate)
    base, extra = divmod(config.n_cells, n_wells)
    plans: list[WellPlan] = []
    for p in range(config.replicates):
        positions = rng.permutation(WELLS_PER_PLATE)[: len(per_plate)]
        order = np.argsort(positions)  # write wells in plate order (B02, B03, ...)
        for j in order:
            i = len(plans)
            plans.append(
                WellPlan(
                    index=i,
                    plate_index=p,
                    plate=f"SimPlate{p + 1:02d}",
                    well=well_names[positions[j]],
                    replicate=p + 1,
                    treatment=per_plate[j],
                    n_cells=base + (1 if i < extra else 0),
                )
            )
    return plans

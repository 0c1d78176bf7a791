"""The one table of how each BBBC021 mechanism of action changes a simulated cell.

Every simulated MCF-7 cell is described by the parameters in `PARAMETERS` (sizes in
pixels of 0.65 µm, intensities as fractions of the 8-bit range). A DMSO cell draws
them from the baseline distributions below. A treated cell draws the same baseline
and then shifts each parameter by `shift × response`, where

    response = susceptibility × c^h / (c^h + EC50^h)

is a Hill dose response of the compound concentration `c` (µM) with the compound's
`EC50` and Hill slope `h` (`COMPOUNDS`), scaled by a per-cell susceptibility (cells
respond unevenly, as real cells do). For parameters of kind "log" the shift is in
log2 units (`value × 2^(shift × response)`), for kind "lin" it is added.
Mitosis is special: a cell is mitotic with probability
`baseline_mitotic + mitotic_shift × response`, and mitotic cells are rounded, small
and have condensed DNA (see `cells.py`).

Phenotype table (shift at full response; `—` = unchanged):

| MoA | What the cells do (literature) | Main parameter shifts |
|---|---|---|
| DMSO | vehicle control: flat, spread MCF-7 cells, fine radial microtubules, cortical F-actin | — |
| Actin disruptors | F-actin depolymerises into dots; cells round up, shrink and thicken | actin_puncta +1.0, actin_fibres −0.9, actin_cortex −0.8, actin_intensity −0.5, cell_aspect −0.6, cell_irregularity −0.06, cell_radius −0.35, tubulin_intensity +0.3 |
| Aurora kinase inhibitors | cytokinesis fails: large polyploid, multinucleate cells | multinucleate +0.85, nucleus_radius +0.25, cell_radius +0.35, dna_intensity +0.25 |
| Cholesterol-lowering | statins: cells shrink and round a little, F-actin rim stronger | cell_radius −0.2, cell_aspect −0.3, actin_cortex +0.6, tubulin_intensity −0.2 |
| DNA damage | G2 arrest: enlarged nuclei and flattened, larger cells | nucleus_radius +0.5, cell_radius +0.35, chromatin_texture +0.6, dna_intensity +0.2 |
| DNA replication | S-phase arrest: larger, brighter, finely granular nuclei | nucleus_radius +0.25, dna_intensity +0.45, chromatin_texture +0.9, cell_radius +0.15 |
| Eg5 inhibitors | monopolar spindles: rounded mitotic cells with a ring of condensed DNA | mitotic +0.75, cell_radius −0.2 |
| Epithelial | compact epithelial islands: smaller, polygonal cells, strong junctional F-actin | cell_radius −0.3, cell_aspect −0.5, cell_irregularity −0.05, actin_cortex +1.2, actin_intensity +0.3 |
| Kinase inhibitors | cells spread and elongate with more stress fibres | cell_aspect +0.8, cell_radius +0.2, actin_fibres +0.35, cell_irregularity +0.06 |
| Microtubule destabilizers | microtubules depolymerise: diffuse tubulin, mitotic arrest, rounding | tubulin_fibre −0.95, tubulin_intensity +0.35, mitotic +0.45, cell_aspect −0.4 |
| Microtubule stabilizers | thick bundled microtubules, perinuclear tubulin, mitotic arrest with fragmented nuclei | tubulin_bundle +1.0, tubulin_intensity +0.5, tubulin_perinuclear +0.8, mitotic +0.3, micronuclei +0.6 |
| Protein degradation | proteasome block: perinuclear aggresome, slightly smaller cells | tubulin_perinuclear +1.5, tubulin_aggresome +1.0, cell_radius −0.15, actin_cortex +0.4 |
| Protein synthesis | translation block: smaller cells, dimmer cytoskeleton | cell_radius −0.45, nucleus_radius −0.15, tubulin_intensity −0.45, actin_intensity −0.4 |

Concentrations are BBBC021's own (µM); EC50s are chosen so that the screen's
concentrations span the response curve, they are not measured potencies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Kind = Literal["log", "lin"]


@dataclass(frozen=True)
class ParameterSpec:
    """Baseline (DMSO) distribution of one per-cell parameter."""

    name: str
    kind: Kind  # "log": lognormal, shifts in log2 units; "lin": normal, shifts added
    mean: float  # median for "log", mean for "lin"
    spread: float  # sd of log2(value) for "log", sd for "lin"
    low: float  # values are clipped to [low, high] after the shift
    high: float
    doc: str


# Cell-to-cell spreads of the tubulin (0.25) and actin (0.33) stains are the within-plate log2 sd of
# the per-crop median in real raw BBBC021 DMSO crops (0.17 and 0.23 in natural log); with the old 0.18
# the simulated DMSO cells were too alike for real exposure levels (tests/simulate/test_channel_balance.py).
PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("cell_radius", "log", 35.0, 0.16, 12.0, 56.0, "equivalent cell radius (px)"),
    ParameterSpec("cell_aspect", "log", 1.35, 0.22, 1.0, 3.2, "cell major/minor axis ratio"),
    ParameterSpec("cell_irregularity", "lin", 0.10, 0.035, 0.0, 0.3, "amplitude of boundary ruffles"),
    ParameterSpec("nucleus_radius", "log", 17.0, 0.12, 5.0, 26.0, "equivalent nucleus radius (px)"),
    ParameterSpec("nucleus_aspect", "log", 1.25, 0.15, 1.0, 2.2, "nucleus major/minor axis ratio"),
    ParameterSpec("dna_intensity", "log", 0.50, 0.16, 0.08, 1.0, "mean DNA stain in the nucleus"),
    ParameterSpec("chromatin_texture", "log", 0.16, 0.25, 0.03, 0.8, "contrast of chromatin texture"),
    ParameterSpec("multinucleate", "lin", 0.0, 0.0, 0.0, 1.0, "probability of 2-4 nuclei"),
    ParameterSpec("micronuclei", "lin", 0.0, 0.0, 0.0, 1.0, "probability of fragmented nuclei"),
    ParameterSpec("mitotic", "lin", 0.03, 0.0, 0.0, 0.95, "probability of being in mitosis"),
    ParameterSpec("tubulin_intensity", "log", 0.26, 0.25, 0.04, 0.9, "mean β-tubulin in the cytoplasm"),
    ParameterSpec("tubulin_fibre", "lin", 0.42, 0.08, 0.0, 1.0, "contrast of radial microtubules"),
    ParameterSpec("tubulin_bundle", "lin", 0.0, 0.03, 0.0, 1.0, "thick bundled microtubules"),
    ParameterSpec("tubulin_perinuclear", "log", 2.0, 0.25, 0.05, 8.0, "perinuclear tubulin enrichment"),
    ParameterSpec("tubulin_aggresome", "lin", 0.0, 0.0, 0.0, 1.0, "bright perinuclear aggregate"),
    ParameterSpec("actin_intensity", "log", 0.28, 0.33, 0.04, 0.9, "mean F-actin in the cell"),
    ParameterSpec("actin_cortex", "log", 0.2, 0.25, 0.05, 4.0, "cortical F-actin enrichment"),
    ParameterSpec("actin_fibres", "lin", 0.28, 0.06, 0.0, 1.0, "contrast of stress fibres"),
    ParameterSpec("actin_puncta", "lin", 0.0, 0.02, 0.0, 1.0, "F-actin fragmented into dots"),
)
PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)
PARAMETER_SPECS: dict[str, ParameterSpec] = {p.name: p for p in PARAMETERS}


@dataclass(frozen=True)
class Phenotype:
    """Full-response parameter shifts of one MoA (units per `ParameterSpec.kind`)."""

    moa: str
    description: str
    shifts: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.shifts) - set(PARAMETER_NAMES))
        if unknown:
            raise ValueError(f"phenotype {self.moa!r}: unknown parameter(s) {unknown}; known: {PARAMETER_NAMES}")


PHENOTYPES: dict[str, Phenotype] = {
    p.moa: p
    for p in (
        Phenotype("DMSO", "vehicle control"),
        Phenotype(
            "Actin disruptors",
            "F-actin breaks into dots; cells round up and shrink",
            {"actin_puncta": 1.0, "actin_fibres": -0.9, "actin_cortex": -0.8, "actin_intensity": -0.5,
             "cell_aspect": -0.6, "cell_irregularity": -0.06, "cell_radius": -0.35, "tubulin_intensity": 0.3},
        ),
        Phenotype(
            "Aurora kinase inhibitors",
            "failed cytokinesis: large multinucleate cells",
            {"multinucleate": 0.85, "nucleus_radius": 0.25, "cell_radius": 0.35, "dna_intensity": 0.25},
        ),
        Phenotype(
            "Cholesterol-lowering",
            "cells shrink and round slightly; stronger cortical actin",
            {"cell_radius": -0.2, "cell_aspect": -0.3, "actin_cortex": 0.6, "tubulin_intensity": -0.2},
        ),
        Phenotype(
            "DNA damage",
            "G2 arrest: enlarged nuclei, flattened larger cells",
            {"nucleus_radius": 0.5, "cell_radius": 0.35, "chromatin_texture": 0.6, "dna_intensity": 0.2},
        ),
        Phenotype(
            "DNA replication",
            "S-phase arrest: larger, brighter, granular nuclei",
            {"nucleus_radius": 0.25, "dna_intensity": 0.45, "chromatin_texture": 0.9, "cell_radius": 0.15},
        ),
        Phenotype(
            "Eg5 inhibitors",
            "monopolar spindles: rounded mitotic cells",
            {"mitotic": 0.75, "cell_radius": -0.2},
        ),
        Phenotype(
            "Epithelial",
            "compact polygonal cells with junctional F-actin",
            {"cell_radius": -0.3, "cell_aspect": -0.5, "cell_irregularity": -0.05, "actin_cortex": 1.2,
             "actin_intensity": 0.3},
        ),
        Phenotype(
            "Kinase inhibitors",
            "spread, elongated cells with stress fibres",
            {"cell_aspect": 0.8, "cell_radius": 0.2, "actin_fibres": 0.35, "cell_irregularity": 0.06},
        ),
        Phenotype(
            "Microtubule destabilizers",
            "diffuse tubulin, mitotic arrest, rounding",
            {"tubulin_fibre": -0.95, "tubulin_intensity": 0.35, "mitotic": 0.45, "cell_aspect": -0.4},
        ),
        Phenotype(
            "Microtubule stabilizers",
            "bundled microtubules, perinuclear tubulin, fragmented nuclei",
            {"tubulin_bundle": 1.0, "tubulin_intensity": 0.5, "tubulin_perinuclear": 0.8, "mitotic": 0.3,
             "micronuclei": 0.6},
        ),
        Phenotype(
            "Protein degradation",
            "perinuclear aggresome, slightly smaller cells",
            {"tubulin_perinuclear": 1.5, "tubulin_aggresome": 1.0, "cell_radius": -0.15, "actin_cortex": 0.4},
        ),
        Phenotype(
            "Protein synthesis",
            "smaller cells, dimmer cytoskeleton",
            {"cell_radius": -0.45, "nucleus_radius": -0.15, "tubulin_intensity": -0.45, "actin_intensity": -0.4},
        ),
    )
}
MOAS: tuple[str, ...] = tuple(m for m in PHENOTYPES if m != "DMSO")


@dataclass(frozen=True)
class Compound:
    """A real BBBC021 compound, its MoA and the simulated dose response."""

    name: str  # BBBC021 spelling
    moa: str
    ec50_um: float  # concentration of half-maximal response (µM)
    hill: float = 1.5  # Hill slope
    strength: float = 1.0  # maximal response (secondary compounds may be weaker)


COMPOUNDS: dict[str, Compound] = {
    c.name: c
    for c in (
        Compound("DMSO", "DMSO", ec50_um=1.0, strength=0.0),
        Compound("latrunculin B", "Actin disruptors", ec50_um=0.4, hill=1.2),
        Compound("cytochalasin B", "Actin disruptors", ec50_um=8.0, strength=0.85),
        Compound("AZ258", "Aurora kinase inhibitors", ec50_um=0.2),
        Compound("mevinolin/lovastatin", "Cholesterol-lowering", ec50_um=4.0),
        Compound("etoposide", "DNA damage", ec50_um=2.5),
        Compound("camptothecin", "DNA replication", ec50_um=0.008),
        Compound("AZ138", "Eg5 inhibitors", ec50_um=0.2),
        Compound("AZ-J", "Epithelial", ec50_um=2.5),
        Compound("PD-169316", "Kinase inhibitors", ec50_um=2.5),
        Compound("demecolcine", "Microtubule destabilizers", ec50_um=0.7),
        Compound("taxol", "Microtubule stabilizers", ec50_um=0.6),
        Compound("MG-132", "Protein degradation", ec50_um=0.6),
        Compound("emetine", "Protein synthesis", ec50_um=0.25),
        Compound("cyclohexamide", "Protein synthesis", ec50_um=10.0, strength=0.9),
    )
}


def dose_response(concentration: np.ndarray | float, compound: Compound) -> np.ndarray:
    """Hill response in [0, strength]: `strength · c^h / (c^h + EC50^h)`; 0 at c = 0."""
    c = np.clip(np.asarray(concentration, dtype=float), 0.0, None)
    ch = c**compound.hill
    return compound.strength * ch / (ch + compound.ec50_um**compound.hill)


def compound(name: str) -> Compound:
    """Look up a compound by its BBBC021 name, with a helpful error."""
    try:
        return COMPOUNDS[name]
    except KeyError:
        raise ValueError(f"unknown compound {name!r}; simulated compounds: {sorted(COMPOUNDS)}") from None

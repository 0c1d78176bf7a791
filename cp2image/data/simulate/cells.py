"""Draw per-cell parameters for one treatment from the phenotype table.

Each cell gets baseline values from `PARAMETERS`, then every parameter is shifted by
`shift × response` for its compound's MoA (`PHENOTYPES`), where the response is the
compound's Hill dose response times a per-cell susceptibility. Discrete states
(mitosis, several nuclei, micronuclei) are drawn with the resulting probabilities;
mitotic cells round up, shrink and condense their DNA.
"""
from __future__ import annotations

import numpy as np

from cp2image.data.simulate.phenotypes import PARAMETERS, PHENOTYPES, compound, dose_response

# How a mitotic cell differs from its interphase parameters (multiplicative).
MITOTIC_FACTORS: dict[str, float] = {
    "cell_radius": 0.62,
    "cell_irregularity": 0.3,
    "nucleus_radius": 0.62,
    "dna_intensity": 1.7,
    "chromatin_texture": 3.0,
    "tubulin_intensity": 1.6,
    "tubulin_fibre": 0.35,
    "actin_intensity": 1.3,
    "actin_cortex": 1.5,
    "actin_fibres": 0.2,
}
SUSCEPTIBILITY_SD = 0.3  # cell-to-cell spread of the response (fraction of the mean)
NUCLEUS_CELL_CORRELATION = 0.5  # correlation of log nucleus size with log cell size


def draw_cells(
    rng: np.random.Generator,
    n: int,
    *,
    compound_name: str,
    concentration: float,
) -> dict[str, np.ndarray]:
    """Draw `n` cells treated with `compound_name` at `concentration` µM.

    Returns a dict of arrays of length `n`: every parameter in `PARAMETERS` (after the
    treatment shift), plus `susceptibility`, `response`, `mitotic` (bool),
    `n_nuclei` (int) and `micronucleated` (bool).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if concentration < 0:
        raise ValueError(f"concentration must be >= 0 µM, got {concentration}")
    comp = compound(compound_name)
    phenotype = PHENOTYPES[comp.moa]
    susceptibility = np.clip(1.0 + SUSCEPTIBILITY_SD * rng.standard_normal(n), 0.0, 1.8)
    response = susceptibility * float(dose_response(concentration, comp))

    z = rng.standard_normal((len(PARAMETERS), n))
    index = {p.name: i for i, p in enumerate(PARAMETERS)}
    rho = NUCLEUS_CELL_CORRELATION
    z[index["nucleus_radius"]] = rho * z[index["cell_radius"]] + np.sqrt(1 - rho**2) * z[index["nucleus_radius"]]

    cells: dict[str, np.ndarray] = {}
    for i, spec in enumerate(PARAMETERS):
        shift = phenotype.shifts.get(spec.name, 0.0) * response
        if spec.kind == "log":
            value = spec.mean * np.exp2(spec.spread * z[i] + shift)
        else:
            value = spec.mean + spec.spread * z[i] + shift
        cells[spec.name] = np.clip(value, spec.low, spec.high)

    cells["mitotic_probability"] = cells.pop("mitotic")
    mitotic = rng.random(n) < cells["mitotic_probability"]
    for name, factor in MITOTIC_FACTORS.items():
        spec = PARAMETERS[index[name]]
        cells[name] = np.where(mitotic, np.clip(cells[name] * factor, spec.low, spec.high), cells[name])
    cells["cell_aspect"] = np.where(mitotic, 1.0 + 0.05 * rng.random(n), cells["cell_aspect"])
    cells["nucleus_aspect"] = np.where(mitotic, 1.0 + 0.3 * rng.random(n), cells["nucleus_aspect"])

    multi = (rng.random(n) < cells["multinucleate"]) & ~mitotic
    n_nuclei = np.where(multi, rng.integers(2, 5, n), 1)
    micro = (rng.random(n) < cells["micronuclei"]) & ~multi

    cells["susceptibility"] = susceptibility
    cells["response"] = response
    cells["mitotic"] = mitotic
    cells["n_nuclei"] = n_nuclei.astype(np.int64)
    cells["micronucleated"] = micro
    return cells


def expected_cell_radius(compound_name: str, concentration: float) -> float:
    """Median interphase cell radius (px) of a treatment, used to space cells in a field."""
    comp = compound(compound_name)
    spec = PARAMETERS[[p.name for p in PARAMETERS].index("cell_radius")]
    shift = PHENOTYPES[comp.moa].shifts.get("cell_radius", 0.0) * float(dose_response(concentration, comp))
    return float(spec.mean * np.exp2(shift))

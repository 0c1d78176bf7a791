"""The phenotype table: documented, complete, and a proper Hill dose response."""
from __future__ import annotations

import re

import numpy as np
import pytest

from cp2image.data.simulate import phenotypes
from cp2image.data.simulate.phenotypes import (
    COMPOUNDS,
    MOAS,
    PARAMETER_NAMES,
    PHENOTYPES,
    Compound,
    Phenotype,
    compound,
    dose_response,
)

BBBC021_MOAS = {
    "Actin disruptors", "Aurora kinase inhibitors", "Cholesterol-lowering", "DNA damage", "DNA replication",
    "Eg5 inhibitors", "Epithelial", "Kinase inhibitors", "Microtubule destabilizers", "Microtubule stabilizers",
    "Protein degradation", "Protein synthesis",
}


def test_table_covers_the_twelve_bbbc021_moas_and_dmso():
    assert set(MOAS) == BBBC021_MOAS
    assert set(PHENOTYPES) == BBBC021_MOAS | {"DMSO"}
    assert PHENOTYPES["DMSO"].shifts == {}


def test_module_docstring_table_matches_the_code():
    """The documented table is the one the simulator uses: same MoAs, same shifts."""
    doc = phenotypes.__doc__
    for moa, pheno in PHENOTYPES.items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| {moa} |")), None)
        assert row is not None, f"{moa} missing from the docstring table"
        documented = dict(re.findall(r"([a-z_]+) ([+−-][0-9.]+)", row.split("|")[3]))
        documented = {k: float(v.replace("−", "-")) for k, v in documented.items()}
        assert documented == pytest.approx(pheno.shifts), moa


def test_biological_directions_of_key_phenotypes():
    assert PHENOTYPES["Actin disruptors"].shifts["actin_puncta"] > 0
    assert PHENOTYPES["Actin disruptors"].shifts["cell_aspect"] < 0  # rounding
    assert PHENOTYPES["Microtubule stabilizers"].shifts["tubulin_bundle"] > 0
    assert PHENOTYPES["Microtubule destabilizers"].shifts["tubulin_fibre"] < 0  # diffuse
    assert PHENOTYPES["Eg5 inhibitors"].shifts["mitotic"] > 0
    assert PHENOTYPES["Aurora kinase inhibitors"].shifts["multinucleate"] > 0
    assert PHENOTYPES["DNA damage"].shifts["nucleus_radius"] > 0
    assert PHENOTYPES["Protein synthesis"].shifts["cell_radius"] < 0


def test_dose_response_is_hill_function():
    c = Compound("x", "DNA damage", ec50_um=2.0, hill=1.0, strength=0.8)
    assert dose_response(0.0, c) == 0.0
    assert dose_response(2.0, c) == pytest.approx(0.4)  # half of strength at EC50
    assert dose_response(6.0, c) == pytest.approx(0.8 * 6 / 8)
    values = dose_response(np.array([0.01, 0.1, 1, 10, 100]), c)
    assert np.all(np.diff(values) > 0)


def test_every_compound_has_a_known_moa():
    assert all(c.moa in PHENOTYPES for c in COMPOUNDS.values())


def test_unknown_names_raise_with_the_choices():
    with pytest.raises(ValueError, match="unknown compound 'aspirin'"):
        compound("aspirin")
    with pytest.raises(ValueError, match="unknown parameter"):
        Phenotype("x", "y", {"cell_volume": 1.0})
    assert "cell_radius" in PARAMETER_NAMES

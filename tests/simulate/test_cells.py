"""Per-cell parameter draws: baseline, dose-dependent shifts and discrete states."""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.data.simulate.cells import draw_cells, expected_cell_radius
from cp2image.data.simulate.phenotypes import PARAMETER_SPECS


def _draw(compound: str, conc: float, n: int = 4000, seed: int = 0) -> dict[str, np.ndarray]:
    return draw_cells(np.random.default_rng(seed), n, compound_name=compound, concentration=conc)


def test_dmso_cells_follow_the_baseline_medians():
    cells = _draw("DMSO", 0.0)
    for name in ("cell_radius", "nucleus_radius", "dna_intensity", "tubulin_intensity"):
        assert np.median(cells[name]) == pytest.approx(PARAMETER_SPECS[name].mean, rel=0.05), name
    assert cells["response"].max() == 0.0
    assert cells["mitotic"].mean() == pytest.approx(0.03, abs=0.01)
    assert (cells["n_nuclei"] == 1).all()


def test_latrunculin_b_puncta_and_rounding_grow_with_dose():
    doses = (0.0, 0.1, 0.3, 1.0, 3.0)
    puncta = [np.mean(_draw("latrunculin B" if d else "DMSO", d)["actin_puncta"]) for d in doses]
    radius = [np.median(_draw("latrunculin B" if d else "DMSO", d)["cell_radius"]) for d in doses]
    assert np.all(np.diff(puncta) > 0)
    assert np.all(np.diff(radius) < 0)


def test_moa_specific_states():
    assert _draw("AZ138", 1.0)["mitotic"].mean() > 0.4  # Eg5: mitotic arrest
    assert (_draw("AZ258", 1.0)["n_nuclei"] > 1).mean() > 0.4  # Aurora: multinucleate
    taxol = _draw("taxol", 3.0)
    assert taxol["tubulin_bundle"].mean() > 0.5 and taxol["micronucleated"].mean() > 0.2
    assert np.median(_draw("etoposide", 10.0)["nucleus_radius"]) > 1.2 * PARAMETER_SPECS["nucleus_radius"].mean
    assert np.median(_draw("demecolcine", 3.0)["tubulin_fibre"]) < 0.2


def test_parameters_stay_within_their_bounds():
    for comp, conc in (("emetine", 1.0), ("AZ258", 1.0), ("latrunculin B", 3.0)):
        cells = _draw(comp, conc)
        for name, spec in PARAMETER_SPECS.items():
            key = "mitotic_probability" if name == "mitotic" else name
            assert cells[key].min() >= spec.low and cells[key].max() <= spec.high, (comp, name)


def test_same_seed_same_cells():
    a, b = _draw("taxol", 1.0, n=50, seed=3), _draw("taxol", 1.0, n=50, seed=3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_expected_radius_shrinks_for_protein_synthesis_inhibitors():
    assert expected_cell_radius("emetine", 1.0) < expected_cell_radius("DMSO", 0.0)


def test_invalid_requests_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="concentration"):
        draw_cells(rng, 3, compound_name="taxol", concentration=-1.0)
    with pytest.raises(ValueError, match="unknown compound"):
        draw_cells(rng, 3, compound_name="aspirin", concentration=1.0)

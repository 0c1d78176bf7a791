"""The compiled rendering loops (render_kernels) paint exactly what the numpy code paints.

A simulated dataset is defined by its seed: the compiled path is only a speed-up, so
every rendered field, bit for bit, must equal the numpy path that runs without numba.
"""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.data.simulate import render, render_kernels
from cp2image.data.simulate.cells import draw_cells, expected_cell_radius

pytestmark = pytest.mark.skipif(not render_kernels.HAS_NUMBA, reason="numba not installed: only the numpy path runs")

# DMSO plus treatments that switch on every painting branch: several nuclei and micronuclei
# (microtubule stabilisers), aggresomes (protein degradation), puncta and round cells (actin).
TREATMENTS = [("DMSO", 0.0), ("taxol", 3.0), ("MG-132", 3.0), ("latrunculin B", 3.0), ("etoposide", 10.0)]


def _field(compound: str, concentration: float, seed: int, *, numba_on: bool, monkeypatch) -> render.Field:
    monkeypatch.setattr(render_kernels, "HAS_NUMBA", numba_on)
    config = render.RenderConfig(field_size=160)
    rng = np.random.default_rng([seed, len(compound)])
    centres = render.layout_positions(rng, config=config, cell_radius=expected_cell_radius(compound, concentration))
    cells = draw_cells(rng, len(centres), compound_name=compound, concentration=concentration)
    plate = render.PlateEffect.draw(np.random.default_rng([seed, 2]))
    return render.render_field(rng, cells, centres, config=config, plate=plate)


@pytest.mark.parametrize("compound,concentration", TREATMENTS)
def test_compiled_field_equals_numpy_field_bit_for_bit(compound, concentration, monkeypatch):
    for seed in range(2):
        fast = _field(compound, concentration, seed, numba_on=True, monkeypatch=monkeypatch)
        slow = _field(compound, concentration, seed, numba_on=False, monkeypatch=monkeypatch)
        assert np.array_equal(fast.image, slow.image)
        assert np.array_equal(fast.label, slow.label)
        assert np.array_equal(fast.cell_area, slow.cell_area)
        assert np.array_equal(fast.centres, slow.centres)


def test_compiled_territories_keep_ties_and_runner_up_like_numpy():
    """Best and runner-up distances (float32) and labels agree exactly, also where cells overlap."""
    rng = np.random.default_rng(5)
    config = render.RenderConfig(field_size=96)
    centres = render.layout_positions(rng, config=config, cell_radius=14.0)
    cells = draw_cells(rng, len(centres), compound_name="DMSO", concentration=0.0)
    cells = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in cells.items()}
    geom = render._cell_geometry(rng, cells, centres)
    fast = render._territories(cells, centres, geom, 96, compiled=True)
    slow = render._territories(cells, centres, geom, 96, compiled=False)
    assert np.array_equal(fast.best, slow.best)
    assert np.array_equal(fast.second, slow.second)
    assert np.array_equal(fast.label, slow.label)
    assert (np.isfinite(slow.second) & (slow.second < 1)).any()  # overlaps exist, so the runner-up is exercised

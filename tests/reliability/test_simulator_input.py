"""Bad or tiny simulator settings: refused up front with the value that is wrong, or
handled (fewer cells than wells gives a dataset of that many cells, not a crash)."""
from __future__ import annotations

import pytest

from cp2image.data import open_dataset
from cp2image.data.simulate.pipeline import SimulationConfig, simulate_screen
from cp2image.data.simulate.screen import ScreenConfig


def test_fewer_cells_than_wells_gives_that_many_cells(tmp_path):
    config = SimulationConfig(screen=ScreenConfig(n_cells=2, compounds=("taxol",), replicates=1,
                                                  dmso_wells_per_plate=1), measure=False)
    ds = open_dataset(simulate_screen(tmp_path / "ds", config))
    assert len(ds) == 2


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        (dict(n_cells=0), r"n_cells must be >= 1"),
        (dict(n_cells=500, replicates=0), r"replicates must be >= 1"),
        (dict(n_cells=500, dmso_wells_per_plate=0), r"at least one DMSO well"),
        (dict(n_cells=500, compounds=("aspirin",)), r"unknown screen compound\(s\) \['aspirin'\]"),
    ],
)
def test_invalid_screen_settings_are_named(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        ScreenConfig(**kwargs)

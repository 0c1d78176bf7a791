"""The example figure: one row per MoA and per latrunculin B concentration."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cp2image.data.simulate.examples import example_rows, examples_figure
from cp2image.data.simulate.screen import screen_treatments


def _fake_screen(per_treatment: int = 3) -> pd.DataFrame:
    rows = [("DMSO", 0.0, "DMSO")] * per_treatment
    for t in screen_treatments():
        rows += [(t.compound, t.concentration, t.moa)] * per_treatment
    return pd.DataFrame(rows, columns=["Metadata_Compound", "Metadata_Concentration", "Metadata_MoA"])


def test_rows_cover_dmso_every_moa_and_every_latrunculin_dose():
    cells = _fake_screen()
    rows = example_rows(cells, per_row=2)
    labels = [label for label, _ in rows]
    assert labels[0] == "DMSO"
    assert len(rows) == 1 + 12 + 4
    assert labels[-4:] == [f"latrunculin B {c:g} µM" for c in (0.1, 0.3, 1.0, 3.0)]
    assert "Actin disruptors\nlatrunculin B 3 µM" in labels  # highest dose of the MoA's main compound
    for label, idx in rows[-4:]:
        assert (cells.loc[idx, "Metadata_Compound"] == "latrunculin B").all() and len(idx) == 2


def test_figure_has_one_axis_per_row():
    cells = _fake_screen(per_treatment=2)
    images = np.random.default_rng(0).integers(0, 255, (len(cells), 3, 68, 68), dtype=np.uint8)
    fig = examples_figure(images, cells, per_row=2)
    assert len(fig.axes) == 17

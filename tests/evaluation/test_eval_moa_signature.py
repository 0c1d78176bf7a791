"""MoA signatures on hand-built profiles: shifts against the control, cosine, kept top features."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.evaluation.moa_signature import moa_signatures


def _cells(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """20 DMSO and 20 Eg5 cells: Eg5 is DMSO shifted by exactly +3 SD in nucleus area and −2 SD
    in eccentricity; the actin texture does not change."""
    rng = np.random.default_rng(seed)

    def standard(n: int) -> np.ndarray:
        x = rng.normal(0, 1, n)
        return (x - x.mean()) / x.std(ddof=1)  # mean 0, SD 1 exactly

    area, ecc, texture = standard(20), standard(20), standard(20)
    frame = pd.DataFrame({
        "Nuclei_AreaShape_Area": np.concatenate([area, area + 3.0]),
        "Nuclei_AreaShape_Eccentricity": np.concatenate([ecc, ecc - 2.0]),
        "Cells_Texture_Contrast_Actin_3_00_256": np.concatenate([texture, texture]),
    })
    return frame, np.array(["DMSO"] * 20 + ["Eg5 inhibitors"] * 20)


def test_a_copy_keeps_the_whole_signature() -> None:
    real, moa = _cells()
    table = moa_signatures(real, real.copy(), moa, top=2).set_index("moa")
    row = table.loc["Eg5 inhibitors"]
    assert row["n"] == 20 and row["signature_cosine"] == pytest.approx(1.0)
    assert row["top_kept"] == 1.0
    assert row["top_features"] == "Nuclei_AreaShape_Area: +3.00 → +3.00; Nuclei_AreaShape_Eccentricity: -2.00 → -2.00"


def test_a_global_bias_of_the_generator_cancels_against_its_own_control() -> None:
    real, moa = _cells()
    generated = real + 5.0  # every generated cell brighter/larger by the same amount
    row = moa_signatures(real, generated, moa).set_index("moa").loc["Eg5 inhibitors"]
    assert row["signature_cosine"] == pytest.approx(1.0)


def test_a_generator_that_draws_every_cell_alike_keeps_nothing() -> None:
    real, moa = _cells()
    generated = real.copy()
    generated.loc[:, :] = np.tile(real.iloc[:20].mean().to_numpy(), (40, 1))  # the average DMSO cell, always
    row = moa_signatures(real, generated, moa, top=2).set_index("moa").loc["Eg5 inhibitors"]
    assert np.isnan(row["signature_cosine"])  # zero generated shift: direction undefined
    assert row["top_kept"] == 0.0


def test_a_halved_shift_is_kept_and_a_reversed_one_is_not() -> None:
    real, moa = _cells()
    eg5 = moa != "DMSO"
    halved, reversed_ = real.copy(), real.copy()
    halved.loc[eg5, "Nuclei_AreaShape_Area"] -= 1.0  # +3 → +2 SD: more than half kept
    reversed_.loc[eg5, "Nuclei_AreaShape_Area"] -= 6.0  # +3 → −3 SD
    kept = moa_signatures(real, halved, moa, top=1).set_index("moa").loc["Eg5 inhibitors"]
    lost = moa_signatures(real, reversed_, moa, top=1).set_index("moa").loc["Eg5 inhibitors"]
    assert kept["top_kept"] == 1.0 and lost["top_kept"] == 0.0
    assert "+3.00 → +2.00" in kept["top_features"] and "+3.00 → -3.00" in lost["top_features"]


def test_moas_with_too_few_cells_are_left_out_and_the_control_is_required() -> None:
    real, moa = _cells()
    few = real.iloc[:25]  # 20 DMSO, 5 Eg5
    assert moa_signatures(few, few, moa[:25], min_cells=6).empty
    assert len(moa_signatures(few, few, moa[:25], min_cells=5)) == 1
    with pytest.raises(ValueError, match="'DMSO' cells as the baseline"):
        moa_signatures(real, real, np.where(moa == "DMSO", "other", moa))
    with pytest.raises(ValueError, match="one row per cell"):
        moa_signatures(real, real.iloc[:5], moa)

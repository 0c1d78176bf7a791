"""control: the feature-control table's per-sweep rows, medians and the ρ-and-slope target."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.analysis import control


def test_summary_takes_medians_over_usable_sweeps_and_needs_rho_and_slope():
    sweeps = pd.DataFrame({
        "cell": [1, 2, 3, 1, 2, 3],
        "feature": ["A"] * 3 + ["B"] * 3,
        "mode": ["coupled"] * 6,
        "n_steps": [9] * 6,
        "slope": [0.6, 0.8, 5.0, 0.04, 0.03, 0.05],
        "spearman_rho": [0.95, 0.99, 0.1, 1.0, 1.0, 1.0],
        "n_measured": [9, 9, 3, 9, 9, 9],  # cell 3 of A: mostly failed segmentation → left out
        "n_clipped": [0, 2, 0, 0, 0, 0],
    })
    summary = control.control_summary(sweeps).set_index("feature")
    assert summary.loc["A", "median_slope"] == pytest.approx(0.7)
    assert summary.loc["A", "median_rho"] == pytest.approx(0.97)
    assert (summary.loc["A", "n_sweeps"], summary.loc["A", "n_left_out"], summary.loc["A", "clipped_steps"]) == (2, 1, 2)
    assert summary.loc["A", "met"]
    assert not summary.loc["B", "met"]  # ρ = 1.00 but the cell moved 4 % of what was asked


def test_a_median_rho_of_exactly_the_target_meets_it_despite_float_round_off():
    # two 9-step sweeps with Σd² = 14 and 10: ρ = 1 − 14/120 and 1 − 10/120, whose mean is 0.9 on paper
    rhos = [1 - 14 / 120, 1 - 10 / 120]
    assert float(np.median(rhos)) < control.RHO_TARGET  # the round-off this guards against
    sweeps = pd.DataFrame({"cell": [1, 2], "feature": ["A", "A"], "mode": ["coupled"] * 2, "n_steps": [9, 9],
                           "slope": [0.9, 0.9], "spearman_rho": rhos, "n_measured": [9, 9], "n_clipped": [0, 0]})
    assert control.control_summary(sweeps).set_index("feature").loc["A", "met"]


@pytest.mark.filterwarnings("ignore:.*outside the range seen")
def test_single_mode_sweeps_of_a_disc_model_measure_full_control(disc_model, cells):
    """An analytic model that draws exactly the requested nucleus area: slope ≈ 1, ρ = 1, target met."""
    dmso = cells.loc[cells["Metadata_Compound"] == "DMSO"]
    cfg = control.ControlConfig(features=("Nuclei_AreaShape_Area", "Not_In_Model"), modes=("coupled", "single"),
                                n_steps=5, span_sd=2.0)
    calls = []
    sweeps = control.control_sweeps(disc_model, dmso.iloc[:2], reference=dmso, coupling=None, config=cfg,
                                    progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (4, 4)
    coupled = sweeps.loc[sweeps["mode"] == "coupled"]
    assert coupled["slope"].isna().all() and set(coupled["note"]) == {"no feature coupling for this model"}
    summary = control.control_summary(sweeps).set_index("mode")
    assert summary.loc["single", "median_slope"] == pytest.approx(1.0, abs=0.1)  # digitised discs
    assert summary.loc["single", "median_rho"] == pytest.approx(1.0)
    assert summary.loc["coupled", "n_sweeps"] == 0 and not summary.loc["coupled", "met"]
    table = control.markdown(control.control_summary(sweeps))
    assert "| Nuclei_AreaShape_Area | – | 1.0" in table and table.rstrip().endswith("| – |")


class _Recorder:
    """A stand-in model that records the refine argument of each generate call (a sweep's settings)."""

    def __init__(self, feature_names):
        from cp2image.models.refine import RefineConfig

        self.feature_names = list(feature_names)
        self.image_size = 8
        self.can_refine = True
        self.refinement = RefineConfig(steps=3, sweeps=True, sweep_smoothness=5.0)
        self.calls = []

    def generate(self, frame, *, batch_size=256, refine=None, **kwargs):
        self.calls.append(refine)
        return np.zeros((len(frame), 3, 8, 8), np.uint8)


def test_single_sweeps_are_refined_only_when_the_ablation_asks(cells):
    """ControlConfig.refine_single refines 'this feature only' sweeps with the model's refinement, jointly
    along the sweep (sweep_smoothness); by default they stay as drawn, as in the app."""
    dmso = cells.loc[cells["Metadata_Compound"] == "DMSO"]
    model = _Recorder(cells.columns[:6])
    for refine_single, expected in [(False, [False]), (True, [5.0])]:
        model.calls.clear()
        cfg = control.ControlConfig(features=("Nuclei_AreaShape_Area",), modes=("single",), n_steps=3,
                                    refine_single=refine_single)
        control.control_sweeps(model, dmso.iloc[:1], reference=dmso, coupling=None, config=cfg,
                               measurer=lambda im: pd.DataFrame({"Nuclei_AreaShape_Area": [1.0, 2.0, 3.0]}))
        got = [c if c is False else c.smoothness for c in model.calls]
        assert got == expected

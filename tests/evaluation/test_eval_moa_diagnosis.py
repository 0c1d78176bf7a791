"""The MoA-loss probes tell a constant shift, shrinkage and structured error apart (issue 13, item 4)."""
import numpy as np
import pandas as pd
import pytest

from cp2image.evaluation.moa_diagnosis import DiagnosisConfig, diagnose_moa_loss
from cp2image.evaluation.moa_fidelity import MoAClassifierConfig

N_FEATURES = 6
CENTRES = {"A": np.array([2.0, 0, 0, 1, 0, 0]), "B": np.array([0, 2.0, 0, 0, 1, 0]), "C": np.array([0, 0, 2.0, 0, 0, 1])}
FAST = DiagnosisConfig(classifier=MoAClassifierConfig(n_bootstrap=0))


def _cells(n_per_class: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for moa, centre in CENTRES.items():
        rows.append(centre + 0.5 * rng.normal(size=(n_per_class, N_FEATURES)))
        labels += [moa] * n_per_class
    frame = pd.DataFrame(np.vstack(rows), columns=[f"Cells_F_{i}" for i in range(N_FEATURES)])
    groups = np.array([f"plate{i % 6}" for i in range(len(frame))])
    return frame, np.array(labels), groups


@pytest.fixture(scope="module")
def screen():
    train, train_moa, _ = _cells(100, seed=0)
    real, moa, groups = _cells(60, seed=1)
    return train, train_moa, real, moa, groups


def _ratio(diagnosis, probe_start: str) -> float:
    probes = diagnosis.probes
    return float(probes.loc[probes["probe"].str.startswith(probe_start), "balanced_ratio"].iloc[0])


def test_generated_profiles_equal_to_the_real_ones_lose_nothing(screen):
    train, train_moa, real, moa, groups = screen
    diagnosis = diagnose_moa_loss(train, train_moa, real, real.copy(), moa, groups=groups, config=FAST)
    assert diagnosis.probes["balanced_ratio"].tolist() == pytest.approx([1.0] * len(diagnosis.probes))
    assert diagnosis.median_slope == pytest.approx(1.0)
    assert diagnosis.error_to_real_variance == pytest.approx(0.0)


def test_a_constant_shift_is_undone_by_the_cross_fitted_offset_probe(screen):
    train, train_moa, real, moa, groups = screen
    shifted = real + np.array([3.0, -2.0, 0.0, 1.0, 0.0, -1.0])  # every cell pushed towards class A
    diagnosis = diagnose_moa_loss(train, train_moa, real, shifted, moa, groups=groups, config=FAST)
    assert _ratio(diagnosis, "generated") < 0.6
    assert _ratio(diagnosis, "generated, offset removed") == pytest.approx(1.0)
    assert diagnosis.median_slope == pytest.approx(1.0)  # a shift is not shrinkage


def test_shrinkage_towards_the_average_cell_shows_as_a_slope_below_one(screen):
    train, train_moa, real, moa, groups = screen
    centre = train.mean()
    shrunk = centre + 0.3 * (real - centre)
    diagnosis = diagnose_moa_loss(train, train_moa, real, shrunk, moa, groups=groups,
                                  config=DiagnosisConfig(error_components=(N_FEATURES,),
                                                         classifier=MoAClassifierConfig(n_bootstrap=0)))
    assert diagnosis.median_slope == pytest.approx(0.3)
    assert diagnosis.error_variance_share[N_FEATURES] == pytest.approx(1.0)
    # removing every error component gives back the real profiles: the oracle's upper bound is 1
    assert _ratio(diagnosis, f"generated, top {N_FEATURES} error components") == pytest.approx(1.0)


def test_error_along_the_class_directions_hurts_more_than_independent_noise_of_the_same_size(screen):
    train, train_moa, real, moa, groups = screen
    rng = np.random.default_rng(3)
    # one shared error per cell, along the direction separating A from B: structured, not independent
    direction = (CENTRES["A"] - CENTRES["B"]) / np.linalg.norm(CENTRES["A"] - CENTRES["B"])
    structured = real + 2.0 * rng.normal(size=(len(real), 1)) * direction
    diagnosis = diagnose_moa_loss(train, train_moa, real, structured, moa, groups=groups, config=FAST)
    assert _ratio(diagnosis, "real + independent noise") > _ratio(diagnosis, "generated") + 0.05
    assert diagnosis.error_variance_share[5] == pytest.approx(1.0)  # all the error lies on one component


def test_mismatched_rows_and_a_single_group_are_refused(screen):
    train, train_moa, real, moa, groups = screen
    with pytest.raises(ValueError, match="one row per held-out cell"):
        diagnose_moa_loss(train, train_moa, real, real.iloc[:-1], moa, groups=groups, config=FAST)
    with pytest.raises(ValueError, match="at least two groups"):
        diagnose_moa_loss(train, train_moa, real, real, moa, groups=np.array(["p"] * len(real)), config=FAST)
    with pytest.raises(ValueError, match="whole numbers"):
        DiagnosisConfig(error_components=(0,))

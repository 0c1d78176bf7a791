"""The fresh-screen scoring of the sim model's ship rules (`cp2image.evaluation.screen_verdict`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.evaluation.screen_verdict import (
    laplacian_frame_ratio,
    pearson_per_feature,
    score_screen,
    verdict_subsets,
)


def test_the_three_subsets_are_disjoint_fixed_and_cover_the_screen():
    a, b = verdict_subsets(4608), verdict_subsets(4608)
    assert [len(a[k]) for k in ("report", "selection", "rest")] == [1152, 1152, 2304]
    assert np.array_equal(np.sort(np.concatenate(list(a.values()))), np.arange(4608))
    for key in a:
        assert np.array_equal(a[key], b[key]) and np.all(np.diff(a[key]) > 0)
    # the report subset does not depend on the selection: rules that read only "report" stay comparable
    assert np.array_equal(verdict_subsets(4608)["report"],
                          np.sort(np.random.default_rng(0).choice(4608, 1152, replace=False)))


def test_a_screen_too_small_for_two_subsets_is_refused():
    with pytest.raises(ValueError, match="cannot hold two subsets of 1152"):
        verdict_subsets(2000)


def test_pearson_skips_columns_without_spread_or_enough_pairs():
    x = np.arange(20, dtype=float)
    real = pd.DataFrame({"same": x, "flipped": x, "flat": np.ones(20), "sparse": x, "angle": x})
    sparse = np.full(20, np.nan)
    sparse[:10] = x[:10]
    generated = pd.DataFrame({"same": 2 * x + 1, "flipped": -x, "flat": x, "sparse": sparse, "angle": x ** 2})
    r = pearson_per_feature(real, generated)
    assert len(r) == 3  # "flat" has no spread on the real side, "sparse" only 10 finite pairs
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and 0.9 < r[2] < 1.0


def test_the_frame_ratio_is_one_for_uniform_noise_and_grows_with_a_busy_border():
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, size=(64, 3, 32, 32))
    assert laplacian_frame_ratio(noise) == pytest.approx(1.0, abs=0.03)
    framed = noise * 0.2
    framed[:, :, 1, :] = framed[:, :, -2, :] = rng.uniform(0, 255, size=(64, 3, 32))
    framed[:, :, :, 1] = framed[:, :, :, -2] = rng.uniform(0, 255, size=(64, 3, 32))
    assert laplacian_frame_ratio(framed) > 3
    with pytest.raises(ValueError, match="at least 16×16"):
        laplacian_frame_ratio(noise[:, :, :8, :8])


def _screen(n_train: int = 300, n_test: int = 90, seed: int = 0):
    rng = np.random.default_rng(seed)
    names = [f"Cells_Feature_{i}" for i in range(12)]
    centres = {moa: rng.normal(0, 3, len(names)) for moa in ("A", "B", "C")}

    def cells(n):
        moa = np.resize(["A", "B", "C"], n)
        x = np.stack([centres[m] for m in moa]) + rng.normal(0, 1, (n, len(names)))
        frame = pd.DataFrame(x, columns=names)
        frame["Metadata_MoA"] = moa
        frame["Metadata_Plate"] = np.resize(["p1", "p2"], n)
        frame["Metadata_Well"] = [f"w{i % 9}" for i in range(n)]
        return frame

    return names, cells(n_train), cells(n_test), rng.uniform(0, 255, (n_test, 3, 32, 32))


def test_a_model_that_returns_each_real_profile_scores_a_ratio_of_one_and_every_feature():
    names, train, test, images = _screen()
    score = score_screen(test[names], test[names], images, test, train, feature_names=names, subset="report")
    assert score.balanced_ratio == pytest.approx(1.0) and score.ratio == pytest.approx(1.0)
    assert score.features_r_above_half == 1.0 and score.n_features_scored == len(names)
    assert score.n_cells == 90 and score.subset == "report"


def test_profiles_shuffled_across_cells_lose_the_moa_and_the_features():
    names, train, test, images = _screen()
    shuffled = test[names].sample(frac=1.0, random_state=1).reset_index(drop=True)
    score = score_screen(test[names], shuffled, images, test, train, feature_names=names, subset="selection")
    assert score.balanced_ratio < 0.7 and score.features_r_above_half < 0.5


def test_rows_that_do_not_line_up_are_refused_naming_the_counts():
    names, train, test, images = _screen()
    with pytest.raises(ValueError, match="90 real profiles, 89 generated"):
        score_screen(test[names], test[names].iloc[:89], images, test, train, feature_names=names, subset="x")
    with pytest.raises(ValueError, match="Metadata_Well"):
        score_screen(test[names], test[names], images, test.drop(columns="Metadata_Well"), train,
                     feature_names=names, subset="x")

"""MoA fidelity on hand-built profiles, and the domain encoder's save/load round trip."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from eval_stubs import draw_cells

from cp2image.evaluation.encoder import DomainEncoder, EncoderConfig, train_domain_encoder
from cp2image.evaluation.reference import resolve_moa_grouping
from cp2image.evaluation.moa_fidelity import (
    MoAClassifierConfig,
    bootstrap_ratio_interval,
    moa_fidelity,
    moa_fidelity_grouped,
)


def _profiles(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    moa = np.array(["DMSO", "Actin disruptors"] * (n // 2))
    area = np.where(moa == "DMSO", 100.0, 200.0) + rng.normal(0, 10, n)
    frame = pd.DataFrame({"Nuclei_AreaShape_Area": area, "Cells_AreaShape_Area": rng.normal(500, 50, n)})
    return frame, moa


def test_generated_profiles_that_equal_the_real_ones_score_the_same() -> None:
    train, train_moa = _profiles(200, 0)
    test, test_moa = _profiles(100, 1)
    result = moa_fidelity(train, train_moa, test, test.copy(), test_moa)
    assert result.real_accuracy > 0.95  # classes 10 sd apart
    assert result.generated_accuracy == result.real_accuracy and result.agreement == 1.0
    assert result.chance_accuracy == 0.5 and result.n_features == 2


def test_generated_profiles_with_the_informative_feature_swapped_score_at_chance_or_worse() -> None:
    train, train_moa = _profiles(200, 0)
    test, test_moa = _profiles(100, 1)
    swapped = test.copy()
    swapped["Nuclei_AreaShape_Area"] = 300.0 - test["Nuclei_AreaShape_Area"]  # DMSO ↔ actin disruptor
    result = moa_fidelity(train, train_moa, test, swapped, test_moa)
    assert result.generated_accuracy < 0.1
    per_class = result.per_class.set_index("moa")
    assert per_class.loc["DMSO", "n"] == 50 and per_class.loc["DMSO", "generated_recall"] < 0.1
    assert int(result.confusion_generated.loc["DMSO", "Actin disruptors"]) > 45


def test_unmeasurable_generated_cells_are_imputed_not_dropped() -> None:
    train, train_moa = _profiles(200, 0)
    test, test_moa = _profiles(100, 1)
    blank = test.copy()
    blank.loc[:, :] = np.nan  # every generated crop failed segmentation
    result = moa_fidelity(train, train_moa, test, blank, test_moa)
    assert result.n_test == 100
    assert len(set(result.confusion_generated.sum(axis=0)[lambda s: s > 0].index)) == 1  # one imputed profile


def test_moa_fidelity_needs_aligned_rows_and_two_classes() -> None:
    train, train_moa = _profiles(20, 0)
    with pytest.raises(ValueError, match="must have one row per held-out cell"):
        moa_fidelity(train, train_moa, train, train.iloc[:5], train_moa)
    with pytest.raises(ValueError, match="at least 2 MoA classes"):
        moa_fidelity(train, np.array(["DMSO"] * 20), train, train, train_moa)


def test_encoder_learns_the_classes_and_round_trips_through_safetensors(tmp_path) -> None:
    images, labels = draw_cells(90, seed=2)
    config = EncoderConfig(base_filters=4, embedding_dim=8, epochs=8, batch_size=16, lr=5e-3)
    trained = train_domain_encoder(images, labels, config=config)
    assert trained.history[-1]["loss"] < trained.history[0]["loss"]
    encoder = trained.encoder
    assert encoder.classes == sorted(set(labels)) and encoder.config.n_classes == 3
    emb = encoder.embed(images)
    assert emb.shape == (90, 8) and emb.dtype == np.float64
    encoder.save(tmp_path / "enc")
    assert (tmp_path / "enc" / "encoder.safetensors").is_file()
    from cp2image.data.files import current_umask

    assert (tmp_path / "enc" / "encoder.safetensors").stat().st_mode & 0o777 == 0o666 & ~current_umask()
    again = DomainEncoder.load(tmp_path / "enc")
    np.testing.assert_allclose(again.embed(images), emb, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(again.predict(images), encoder.predict(images))


def test_encoder_training_is_reproducible_for_a_seed() -> None:
    images, labels = draw_cells(30, seed=3)
    config = EncoderConfig(base_filters=4, embedding_dim=4, epochs=1, batch_size=8, seed=5)
    a = train_domain_encoder(images, labels, config=config).encoder.embed(images)
    b = train_domain_encoder(images, labels, config=config).encoder.embed(images)
    np.testing.assert_array_equal(a, b)


def test_loading_an_encoder_from_a_folder_without_one_names_the_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="missing encoder.safetensors"):
        DomainEncoder.load(tmp_path)
    (tmp_path / "encoder.json").write_text('{"config": {"n_classes": 2}, "classes": ["a", "b"]}')
    (tmp_path / "encoder.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read weights"):
        DomainEncoder.load(tmp_path)


# ----------------------------------------------------------------------------- fidelity ratio, grouped protocol


def _plated_profiles(n_plates: int, per_plate: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Two MoAs, 10 SD apart in nucleus area, on `n_plates` plates with both MoAs each."""
    frame, moa = _profiles(n_plates * per_plate, seed)
    plates = np.repeat([f"P{i}" for i in range(n_plates)], per_plate)
    return frame, moa, plates


def test_ratio_is_generated_over_real_accuracy_and_one_for_a_perfect_copy() -> None:
    train, train_moa = _profiles(200, 0)
    test, test_moa = _profiles(100, 1)
    result = moa_fidelity(train, train_moa, test, test.copy(), test_moa)
    assert result.ratio == 1.0 and result.balanced_ratio == 1.0
    low, high = result.ratio_interval
    assert low == high == 1.0  # every resample has identical real and generated hits
    assert result.balanced_ratio_interval == (1.0, 1.0)
    assert result.per_class["ratio"].tolist() == [1.0, 1.0]


def test_half_the_generated_cells_swapped_halves_the_ratio_of_their_moa() -> None:
    train, train_moa = _profiles(200, 0)
    test, test_moa = _profiles(100, 1)
    generated = test.copy()
    dmso = np.flatnonzero(test_moa == "DMSO")[:25]  # 25 of the 50 DMSO cells look like actin disruptors
    generated.loc[dmso, "Nuclei_AreaShape_Area"] = 200.0
    result = moa_fidelity(train, train_moa, test, generated, test_moa)
    assert result.real_accuracy == 1.0
    assert result.generated_accuracy == pytest.approx(0.75)
    assert result.ratio == pytest.approx(0.75)
    per_class = result.per_class.set_index("moa")
    assert per_class.loc["DMSO", "ratio"] == pytest.approx(0.5)
    assert per_class.loc["Actin disruptors", "ratio"] == pytest.approx(1.0)


def test_cluster_bootstrap_interval_brackets_the_ratio_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    truth = np.array(["a", "b"] * 50)
    pred_real = np.where(rng.random(100) < 0.9, truth, "x")
    pred_gen = np.where(rng.random(100) < 0.6, truth, "x")
    groups = np.repeat(np.arange(10), 10).astype(str)
    first = bootstrap_ratio_interval(truth, pred_real, pred_gen, groups, n_resamples=500, confidence=0.95, seed=1)
    again = bootstrap_ratio_interval(truth, pred_real, pred_gen, groups, n_resamples=500, confidence=0.95, seed=1)
    ratio = np.mean(pred_gen == truth) / np.mean(pred_real == truth)
    assert first == again and first[0] < ratio < first[1]
    balanced = bootstrap_ratio_interval(truth, pred_real, pred_gen, groups, n_resamples=500, confidence=0.95,
                                        seed=1, balanced=True)
    assert balanced[0] < ratio < balanced[1]  # two equal-sized classes: balanced ≈ plain accuracy
    none = bootstrap_ratio_interval(truth, pred_real, pred_gen, groups, n_resamples=0, confidence=0.95, seed=1)
    assert np.isnan(none).all()


def test_grouped_protocol_scores_every_held_out_cell_with_a_classifier_blind_to_its_plate() -> None:
    test, test_moa, plates = _plated_profiles(4, 50, seed=3)
    result = moa_fidelity_grouped(test, test.copy(), test_moa, plates, group_name="plate")
    assert result.n_test == 200 and result.n_groups == 4 and result.n_unseen_class == 0
    assert result.real_accuracy > 0.95 and result.ratio == 1.0
    assert "GroupKFold by plate: 4 fold(s) over 4 held-out plates" in result.protocol
    assert set(result.predictions["group"]) == {"P0", "P1", "P2", "P3"}


def test_grouped_protocol_learns_an_moa_that_is_absent_from_the_training_split() -> None:
    """A plate effect: on held-out plates only, a third MoA appears; the other folds teach it."""
    train, train_moa = _profiles(200, 0)  # DMSO and actin disruptors only
    rng = np.random.default_rng(5)
    test, test_moa, plates = _plated_profiles(4, 50, seed=4)
    eg5 = np.arange(len(test)) % 4 == 0
    test_moa = np.where(eg5, "Eg5 inhibitors", test_moa)
    test.loc[eg5, "Cells_AreaShape_Area"] = rng.normal(900, 20, eg5.sum())  # 8 SD above the others
    split_only = moa_fidelity(train, train_moa, test, test.copy(), test_moa)
    grouped = moa_fidelity_grouped(test, test.copy(), test_moa, plates, train=train, train_moa=train_moa,
                                   train_groups=np.array(["T"] * len(train)), group_name="plate")
    assert split_only.n_unseen_class == eg5.sum()
    recall = grouped.per_class.set_index("moa")["real_recall"]
    assert grouped.n_unseen_class == 0 and recall["Eg5 inhibitors"] > 0.9
    assert grouped.n_train == len(train) + len(test)


def test_grouped_protocol_refuses_shared_groups_and_a_single_group_without_training_cells() -> None:
    test, test_moa, plates = _plated_profiles(2, 20, seed=1)
    with pytest.raises(ValueError, match="share plate"):
        moa_fidelity_grouped(test, test, test_moa, plates, train=test, train_moa=test_moa, train_groups=plates,
                             group_name="plate")
    with pytest.raises(ValueError, match="need ≥ 2 held-out plates"):
        moa_fidelity_grouped(test, test, test_moa, np.array(["P0"] * len(test)), group_name="plate")
    with pytest.raises(ValueError, match="one row per held-out cell"):
        moa_fidelity_grouped(test, test.iloc[:3], test_moa, plates)


def test_class_balancing_stops_a_majority_class_from_swallowing_a_small_one() -> None:
    """90 % DMSO with an MoA that overlaps it: unweighted, the small MoA is rarely called."""
    rng = np.random.default_rng(7)
    n_major, n_minor = 900, 100
    moa = np.array(["DMSO"] * n_major + ["Eg5 inhibitors"] * n_minor)
    area = np.concatenate([rng.normal(100, 10, n_major), rng.normal(115, 10, n_minor)])  # 1.5 SD apart
    frame = pd.DataFrame({"Nuclei_AreaShape_Area": area, "Cells_AreaShape_Area": rng.normal(500, 50, len(moa))})
    balanced = moa_fidelity(frame, moa, frame, frame, moa)
    plain = moa_fidelity(frame, moa, frame, frame, moa, config=MoAClassifierConfig(class_weight=None))
    assert balanced.real_balanced_accuracy > plain.real_balanced_accuracy + 0.1
    with pytest.raises(ValueError, match="class_weight"):
        MoAClassifierConfig(class_weight="weighted")


def test_the_grouping_follows_how_the_dataset_was_split() -> None:
    cells = pd.DataFrame({"Metadata_Plate": ["A", "A", "B", "B", "C", "C"],
                          "Metadata_Well": ["w1", "w2", "w1", "w2", "w1", "w2"]})
    by_plate_train, by_plate_test = np.array([0, 1, 2, 3]), np.array([4, 5])
    by_well_train, by_well_test = np.array([0, 2, 4]), np.array([1, 3, 5])
    assert resolve_moa_grouping(cells, by_plate_test, by_plate_train, "auto") == "plate"
    assert resolve_moa_grouping(cells, by_well_test, by_well_train, "auto") == "well"
    assert resolve_moa_grouping(cells, by_well_test, by_well_train, "split") == "split"
    with pytest.raises(ValueError, match="moa_groups must be one of"):
        resolve_moa_grouping(cells, by_well_test, by_well_train, "compound")
    with pytest.raises(ValueError, match="needs column"):
        resolve_moa_grouping(cells[["Metadata_Plate"]], by_well_test, by_well_train, "well")


def test_a_generator_that_only_draws_the_majority_class_keeps_plain_accuracy_but_not_balanced() -> None:
    """Each of 10 plates: 9 DMSO cells and 1 Eg5 cell. Calling every generated cell DMSO keeps 90 % of
    the accuracy on every resample, but exactly half the balanced accuracy (Eg5 recall 0)."""
    truth = np.tile(["DMSO"] * 9 + ["Eg5 inhibitors"], 10)
    groups = np.repeat(np.arange(10), 10).astype(str)
    pred_gen = np.array(["DMSO"] * 100)
    plain = bootstrap_ratio_interval(truth, truth, pred_gen, groups, n_resamples=200, confidence=0.9, seed=0)
    balanced = bootstrap_ratio_interval(truth, truth, pred_gen, groups, n_resamples=200, confidence=0.9,
                                        seed=0, balanced=True)
    np.testing.assert_allclose(plain, (0.9, 0.9))
    np.testing.assert_allclose(balanced, (0.5, 0.5))

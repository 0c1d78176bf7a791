"""MoA fidelity on hand-built profiles, and the domain encoder's save/load round trip."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from eval_stubs import draw_cells

from cp2image.evaluation.encoder import DomainEncoder, EncoderConfig, train_domain_encoder
from cp2image.evaluation.moa_fidelity import moa_fidelity


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

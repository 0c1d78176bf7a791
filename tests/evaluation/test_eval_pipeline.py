"""evaluate(): analytic outcomes for stub models that copy, permute, blank or sample images."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from eval_stubs import BlankAutoencoder, CopyGenerator, DrawingSampler, IdentityAutoencoder

from cp2image.evaluation import build_reference, evaluate, evaluate_against
from cp2image.evaluation.config import EvaluationConfig
from cp2image.evaluation.metrics import NOT_COMPARABLE
from cp2image.evaluation.inception import ENV_VAR


@pytest.fixture(scope="module")
def reference(tiny_dataset, fast_config, monkeypatch_module):
    monkeypatch_module.delenv(ENV_VAR, raising=False)
    return build_reference(tiny_dataset, config=fast_config)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_reference_uses_only_the_held_out_split(reference, tiny_dataset) -> None:
    splits = tiny_dataset.cells["Metadata_Split"].to_numpy()[reference.rows]
    assert set(splits) == {"test"}
    assert len(reference.rows) == (tiny_dataset.cells["Metadata_Split"] == "test").sum() == 50
    assert len(reference.measured) == len(reference.images) == 50


def test_a_model_that_copies_the_originals_scores_perfectly(reference, tiny_dataset, fast_config) -> None:
    result = evaluate_against(CopyGenerator(tiny_dataset), reference, config=fast_config)
    m = result.metrics.to_dict()
    assert m["model"]["mode"] == "conditional" and m["model"]["paired"]
    r = result.correlation.defined["pearson_r"].to_numpy()
    np.testing.assert_allclose(r, 1.0, atol=1e-9)
    assert m["correlation"]["fraction_above"] == 1.0
    # 50 cells in ~200 dimensions: singular covariances, so sqrtm round-off (≈1e-7 of Tr Σ ≈ 400) remains
    assert m["cellprofiler_space"]["frechet"] == pytest.approx(0.0, abs=1e-3)
    assert m["encoder_space"]["frechet"] == pytest.approx(0.0, abs=1e-6)
    moa = m["moa_fidelity"]
    assert moa["generated_accuracy"] == moa["real_accuracy"] and moa["agreement"] == 1.0
    # one plate split by well: every held-out cell scored by a classifier that never saw its well
    assert moa["grouping"] == "well" and moa["n_test"] == 50 and moa["n_groups"] == 5
    assert moa["ratio"] == 1.0 and m["headline"]["moa_fidelity_ratio"] == 1.0
    signature = m["moa_signature"]
    assert signature["available"] and all(r["signature_cosine"] == pytest.approx(1.0) for r in signature["per_class"])
    quality = m["image_quality"]  # copies: every image statistic and every class's puncta equal the real ones
    assert quality["available"] and quality["generated"] == quality["real"]
    assert quality["puncta_by_class"] and all(r["generated"] == r["real"] for r in quality["puncta_by_class"])


def test_permuted_images_keep_the_distribution_but_lose_the_correlation(reference, tiny_dataset, fast_config) -> None:
    result = evaluate_against(CopyGenerator(tiny_dataset, permute_seed=3), reference, config=fast_config)
    m = result.metrics.to_dict()
    # same set of images → same Gaussian fit → distance ≈ 0; in CellProfiler space only up to
    # rank-deficient sqrtm round-off (50 cells, hundreds of features): < 1 % of Tr Σ = n_features
    cp = m["cellprofiler_space"]
    assert 0 <= abs(cp["frechet"]) < 0.01 * cp["n_features"]
    assert "rank-deficient" in cp["warning"]
    assert m["encoder_space"]["frechet"] == pytest.approx(0.0, abs=1e-6)
    # but cell i no longer matches image i
    assert abs(m["correlation"]["median_r"]) < 0.3
    assert m["correlation"]["fraction_above"] < 0.2


def test_typed_metrics_are_what_metrics_json_holds(reference, tiny_dataset, fast_config) -> None:
    m = evaluate_against(CopyGenerator(tiny_dataset, permute_seed=3), reference, config=fast_config).metrics
    assert m.model.paired and m.correlation.available and not m.inception.distances
    assert m.headline.fraction_r_above_half == m.correlation.values["fraction_above"] < 0.2
    d = m.to_dict()
    assert list(d) == ["created_utc", "model", "dataset", "inception", "cellprofiler_space", "encoder_space",
                       "correlation", "moa_fidelity", "moa_signature", "segmentation_failed_fraction",
                       "image_quality", "config", "timings_s", "headline"]
    assert d["cellprofiler_space"]["frechet"] == m.cellprofiler_space.distances.frechet
    assert d["headline"]["fraction_r_above_0.5"] == m.headline.fraction_r_above_half
    assert d["inception"] == {"available": False, "fid": None, "kid": None, "reason": m.inception.reason}


def test_a_perfect_autoencoder_is_evaluated_as_paired_reconstruction(reference, fast_config) -> None:
    m = evaluate_against(IdentityAutoencoder(), reference, config=fast_config).metrics.to_dict()
    assert m["model"]["mode"] == "reconstruction"
    assert m["correlation"]["fraction_above"] == 1.0


def test_blank_images_are_reported_as_unmeasurable_not_as_a_distance(reference, fast_config) -> None:
    m = evaluate_against(BlankAutoencoder(), reference, config=fast_config).metrics.to_dict()
    cp = m["cellprofiler_space"]
    assert cp["generated_dropped_fraction"] == 1.0
    assert cp["frechet"] is None and "could be measured" in cp["reason"]
    assert m["segmentation_failed_fraction"]["generated"] == 1.0
    assert m["encoder_space"]["frechet"] > 0


def test_unconditional_samples_get_distances_but_no_correlation_or_moa(reference, fast_config) -> None:
    m = evaluate_against(DrawingSampler(), reference, config=fast_config).metrics.to_dict()
    assert m["model"]["mode"] == "unconditional" and not m["model"]["paired"]
    assert m["correlation"] == {"available": False, "reason": m["correlation"]["reason"]}
    assert "unconditional" in m["moa_fidelity"]["reason"]
    # fresh draws of the same kind of cell: a small but non-zero distance, far below blank images'
    blank = evaluate_against(BlankAutoencoder(), reference, config=fast_config).metrics.to_dict()
    assert 0 < m["encoder_space"]["frechet"] < 0.5 * blank["encoder_space"]["frechet"]
    assert np.isfinite(m["cellprofiler_space"]["kid"])


def test_without_inception_weights_fid_is_skipped_with_instructions(reference, tiny_dataset, fast_config) -> None:
    m = evaluate_against(CopyGenerator(tiny_dataset), reference, config=fast_config).metrics.to_dict()
    assert m["inception"]["available"] is False and m["inception"]["fid"] is None
    assert ENV_VAR in m["inception"]["reason"] and "--inception" in m["inception"]["reason"]
    assert m["cellprofiler_space"]["note"] == NOT_COMPARABLE


class _PoolStub(torch.nn.Module):
    """Scripted stand-in for the FID network: (B, 3, 299, 299) → (B, 2048)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3 * 4, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)  # (B, 12)
        return torch.relu(self.proj(pooled))


@pytest.mark.slow  # one sqrtm of a 2048 × 2048 matrix: ~30 s on 2 busy cores
def test_inception_fid_is_the_frechet_distance_of_the_pool_features(tiny_dataset, fast_config, tmp_path,
                                                                     monkeypatch) -> None:
    from cp2image.evaluation import distances
    from cp2image.evaluation.inception import FEATURE_DIM, InceptionExtractor

    # Record what the evaluation hands to the Fréchet distance (its maths is pinned in
    # test_eval_frechet.py), so the 2048-d square root is computed once, not twice.
    calls: list[tuple[np.ndarray, np.ndarray, float]] = []
    real_frechet = distances.frechet_distance_from_features

    def recording(x: np.ndarray, y: np.ndarray, **kw) -> float:
        calls.append((x, y, real_frechet(x, y, **kw)))
        return calls[-1][2]

    monkeypatch.setattr(distances, "frechet_distance_from_features", recording)
    torch.manual_seed(0)
    path = tmp_path / "pool.pt"
    torch.jit.script(_PoolStub()).save(str(path))
    config = EvaluationConfig(**{**fast_config.__dict__, "inception": str(path), "max_cells": 20})
    ref = build_reference(tiny_dataset, config=config)
    result = evaluate_against(CopyGenerator(tiny_dataset, permute_seed=1), ref, config=config)
    inc = result.metrics.to_dict()["inception"]
    assert inc["available"] and inc["weights"]["path"] == str(path)
    extractor = InceptionExtractor.load(path)
    real_pool, generated_pool = extractor.features(ref.images), extractor.features(result.generated.images)
    pool_calls = [c for c in calls if c[0].shape[1] == FEATURE_DIM]
    assert len(pool_calls) == 1  # FID is the Fréchet distance of exactly these pool features
    x, y, fid = pool_calls[0]
    np.testing.assert_allclose(x, real_pool, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(y, generated_pool, rtol=1e-9, atol=1e-9)
    assert inc["fid"] == pytest.approx(fid, rel=1e-9, abs=1e-9)
    assert abs(inc["fid"]) < 1e-2 * np.trace(np.cov(real_pool.T))  # same crops, permuted


def test_evaluate_writes_metrics_tables_and_a_report(tiny_dataset, fast_config, reference, tmp_path) -> None:
    out = tmp_path / "eval"
    metrics = evaluate(CopyGenerator(tiny_dataset, permute_seed=5), tiny_dataset, "test", out, config=fast_config,
                       reference=reference)
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["headline"]["fraction_r_above_0.5"] == pytest.approx(metrics["correlation"]["fraction_above"])
    table = pd.read_csv(out / "correlation.csv")
    assert list(table.columns[:3]) == ["feature", "pearson_r", "rank"]
    finite = table["pearson_r"].dropna().to_numpy()
    assert np.all(np.diff(finite) <= 0)  # ranked, best first
    pairs = pd.read_parquet(out / "pairs.parquet")
    assert set(pairs.columns) >= {"cell", "feature", "real", "generated", "Metadata_MoA"}
    assert pairs["feature"].nunique() == len(table)
    report = (out / "report.md").read_text()
    assert "not comparable with Inception FID" in report and "Top 20 features" in report
    for text in (report, (out / "report.html").read_text()):
        assert "Image statistics CellProfiler features miss" in text and "Actin puncta per crop, by class" in text
    for name in ("examples", "correlation_ranked", "correlation_top6", "moa_fidelity"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    assert "<table>" in (out / "report.html").read_text()


def test_pairs_file_respects_its_size_budget(tiny_dataset, fast_config, reference, tmp_path) -> None:
    config = EvaluationConfig(**{**fast_config.__dict__, "pairs_budget_bytes": 8 * 300 * 10})
    evaluate(CopyGenerator(tiny_dataset), tiny_dataset, "test", tmp_path, config=config, report=False,
             reference=reference)
    pairs = pd.read_parquet(tmp_path / "pairs.parquet")
    n_features = pairs["feature"].nunique()
    kept = pairs["cell"].unique()
    assert len(kept) == max(1, (8 * 300 * 10) // (8 * n_features))
    assert kept.max() > len(kept)  # a random spread of cells, not the first ones


def test_an_empty_split_is_an_error_naming_the_splits(tiny_dataset, fast_config) -> None:
    with pytest.raises(ValueError, match=r"no cells in split 'val' \(splits present: \['test', 'train'\]\)"):
        build_reference(tiny_dataset, config=EvaluationConfig(**{**fast_config.__dict__, "split": "val"}))


def test_an_object_without_a_generation_method_is_rejected(reference, fast_config) -> None:
    with pytest.raises(TypeError, match="none of generate"):
        evaluate_against(object(), reference, config=fast_config)


def test_inception_extractor_feeds_299_pixel_rgb_in_minus_one_to_one(tmp_path) -> None:
    from cp2image.evaluation.inception import InceptionExtractor, to_inception_input

    crops = np.zeros((2, 3, 68, 68), dtype=np.uint8)
    crops[0, 0] = 255  # DNA → blue
    crops[1, 2] = 128  # actin → green
    x = to_inception_input(crops)
    assert tuple(x.shape) == (2, 3, 299, 299)
    torch.testing.assert_close(x[0, 2].mean(), torch.tensor(127 / 128))  # blue at (255 − 128) / 128
    torch.testing.assert_close(x[0, 0].mean(), torch.tensor(-1.0))  # red empty
    torch.testing.assert_close(x[1, 1].mean(), torch.tensor(0.0))  # green at 128 → 0
    path = tmp_path / "pool.pt"
    torch.jit.script(_PoolStub()).save(str(path))
    extractor = InceptionExtractor.load(path)
    feats = extractor.features(crops)
    assert feats.shape == (2, 2048) and feats.dtype == np.float64
    assert extractor.identity.startswith("unrecognised")


def test_several_held_out_splits_can_be_pooled(tiny_dataset, fast_config) -> None:
    config = EvaluationConfig(**{**fast_config.__dict__, "split": "test,train", "max_train_cells": 20})
    ref = build_reference(tiny_dataset, config=config)
    assert len(ref.rows) == len(tiny_dataset) and np.all(np.diff(ref.rows) > 0)


def test_stored_real_profiles_equal_measuring_the_crops_again(tiny_dataset, fast_config, reference) -> None:
    """The tiny dataset was measured by cp2image.features.measure, so its columns are the measurement."""
    stored = build_reference(tiny_dataset, config=replace(fast_config, real_features="stored"))
    np.testing.assert_array_equal(stored.rows, reference.rows)
    # atol: Cells_AreaShape_Zernike_* (range 0–1) of a few cells move by ~0.01 with the batch they are measured in
    # (stored: all 150 crops at once; reference: the 50 held-out ones), a property of measure() itself
    pd.testing.assert_frame_equal(stored.measured[reference.measured.columns], reference.measured,
                                  check_dtype=False, rtol=0, atol=0.02)
    with pytest.raises(ValueError, match="real_features must be"):
        build_reference(tiny_dataset, config=replace(fast_config, real_features="cached"))


def test_simulated_screens_declare_their_measurement_so_their_stored_profiles_can_be_used(tiny_dataset, fast_config,
                                                                                          tmp_path) -> None:
    from cp2image.data.dataset import open_dataset, write_dataset
    from cp2image.data.simulate.pipeline import SimulationConfig, simulation_meta
    from cp2image.data.simulate.screen import ScreenConfig

    screen_config = ScreenConfig(n_cells=100)
    assert simulation_meta(SimulationConfig(screen_config))["provenance"]["features"] == "cp2image.features.measure"
    assert simulation_meta(SimulationConfig(screen_config, measure=False))["provenance"]["features"] is None
    images, cells = np.asarray(tiny_dataset.images), tiny_dataset.cells
    config = replace(fast_config, real_features="stored")
    for measured in (True, False):  # a screen simulated before the "features" key was written
        meta = {"provenance": {"source": "cp2image simulate (virtual BBBC021)", "features_measured": measured}}
        screen = open_dataset(write_dataset(tmp_path / f"screen-{measured}", images, cells, meta=meta))
        if measured:
            assert len(build_reference(screen, config=config).measured) == 50
        else:
            with pytest.raises(ValueError, match="needs features measured by cp2image.features.measure"):
                build_reference(screen, config=config)


def test_the_moa_diagnosis_is_written_when_asked_for(tiny_dataset, fast_config, reference, tmp_path) -> None:
    config = replace(fast_config, moa_diagnosis=True)
    evaluate(CopyGenerator(tiny_dataset), tiny_dataset, "test", tmp_path, config=config, report=False,
             reference=reference)
    probes = pd.read_csv(tmp_path / "moa_diagnosis.csv")
    assert probes["probe"].iloc[0] == "generated"
    assert len(probes) == 3 + 2  # generated, noise, offset, and the top-5 and top-20 error components removed
    # the originals copied: no error, so every probe keeps all of the real accuracy
    np.testing.assert_allclose(probes["balanced_ratio"], 1.0)
    summary = json.loads((tmp_path / "moa_diagnosis.json").read_text())
    assert summary["median_slope"] == pytest.approx(1.0) and set(summary["error_variance_share"]) == {"5", "20"}


def test_no_moa_diagnosis_file_unless_asked_for(tiny_dataset, fast_config, reference, tmp_path) -> None:
    evaluate(CopyGenerator(tiny_dataset), tiny_dataset, "test", tmp_path, config=fast_config, report=False,
             reference=reference)
    assert not (tmp_path / "moa_diagnosis.csv").exists()

"""evaluation.files: a model's saved evaluation (<model>/evaluation/) read back for the correlation report and model card."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cp2image.evaluation.files import (
    image_quality_tables,
    HEADLINE_HELP,
    HEADLINE_LABELS,
    feature_pairs,
    format_headline,
    locate_evaluation,
    read_evaluation,
)


def test_evaluation_folder_is_read_sorted_and_pairs_filtered(tmp_path):
    pd.DataFrame({"feature": ["a", "b", "c"], "pearson_r": [0.1, np.nan, 0.7]}).to_csv(tmp_path / "correlation.csv", index=False)
    pd.DataFrame({"cell": [0, 1, 0], "feature": ["a", "a", "c"], "real": [1.0, 2.0, 3.0],
                  "generated": [1.1, 2.1, 2.9]}).to_parquet(tmp_path / "pairs.parquet")
    (tmp_path / "metrics.json").write_text(json.dumps({"headline": {"fid_inception": 12.5, "ok": True, "kid": None},
                                                        "correlation": {"x": 1}}))
    report = read_evaluation(tmp_path)
    assert report.correlation["feature"].tolist() == ["c", "a", "b"]
    assert report.headline() == {"fid_inception": 12.5}
    assert feature_pairs(report.pairs_path, "a")["real"].tolist() == [1.0, 2.0]
    assert feature_pairs(report.pairs_path, "c")["generated"].tolist() == [2.9]
    assert feature_pairs(report.pairs_path, "b").empty  # no pairs: the page says so


def test_missing_evaluation_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="cp2image evaluate"):
        read_evaluation(tmp_path)
    pd.DataFrame({"feature": ["a"], "r": [0.1]}).to_csv(tmp_path / "correlation.csv", index=False)
    with pytest.raises(ValueError, match="'pearson_r'"):
        read_evaluation(tmp_path)


def test_a_model_folders_evaluation_is_its_evaluation_subfolder_and_nothing_else(tmp_path):
    assert locate_evaluation(tmp_path) is None
    # the former bundle format beside the weights is not an evaluation any more
    pd.DataFrame({"feature": ["a"], "pearson_r": [0.2]}).to_csv(tmp_path / "heldout_correlation.csv", index=False)
    assert locate_evaluation(tmp_path) is None
    (tmp_path / "evaluation").mkdir()
    pd.DataFrame({"feature": ["a", "b"], "pearson_r": [0.2, 0.9]}).to_csv(tmp_path / "evaluation" / "correlation.csv",
                                                                         index=False)
    assert locate_evaluation(tmp_path) == tmp_path / "evaluation"
    report = read_evaluation(locate_evaluation(tmp_path))
    assert report.correlation["feature"].tolist() == ["b", "a"] and report.pairs_path is None


def test_headline_accuracies_read_as_percent_and_the_balanced_fidelity_ratio_is_shown():
    assert format_headline("moa_accuracy_generated", 0.299645) == "30.0%"
    assert format_headline("moa_accuracy_real", 0.5425) == "54.2%"
    assert format_headline("moa_fidelity_balanced_ratio", 0.536) == "0.54"
    assert format_headline("frechet_cellprofiler", 135.68) == "136"
    assert "moa_fidelity_balanced_ratio" in HEADLINE_LABELS
    assert set(HEADLINE_LABELS) <= set(HEADLINE_HELP)  # every number shown says what good looks like


def test_image_statistics_read_back_real_beside_generated_with_puncta_per_class():
    metrics = {"image_quality": {
        "available": True,
        "real": {"n": 4, "edge_frame": 1.02, "streak": 0.18, "puncta_per_crop": 2.5},
        "generated": {"n": 4, "edge_frame": 1.4, "streak": 0.2, "puncta_per_crop": None},
        "puncta_by_class": [{"class": "Actin disruptors", "n": 2, "real": 13.0, "generated": 1.0}]}}
    stats, puncta = image_quality_tables(metrics)
    assert list(stats["statistic"]) == ["Edge frame", "Streak index", "Actin puncta per crop"]
    assert stats["real"].tolist() == [1.02, 0.18, 2.5]
    assert stats["generated"].iloc[0] == 1.4 and np.isnan(stats["generated"].iloc[2])  # null stays missing
    assert puncta.to_dict(orient="records") == [{"class": "Actin disruptors", "n": 2, "real": 13.0, "generated": 1.0}]
    from cp2image.analysis import panels

    panel = panels.puncta_by_class_panel(puncta)
    assert panel.data.equals(puncta)


def test_evaluations_made_before_the_image_statistics_have_none():
    assert image_quality_tables({"headline": {}}) is None
    assert image_quality_tables({"image_quality": {"available": False, "reason": "x"}}) is None


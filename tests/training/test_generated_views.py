"""Generated views: the generator's own images, labelled by measuring them, train a critic it cannot fool."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cp2image.data.dataset import open_dataset
from cp2image.features import measure
from cp2image.models.testing import tiny_model
from cp2image.training.consistency import coupling_matrix
from cp2image.training.generated_views import GeneratedViewsConfig, edited_requests, generated_views
from cp2image.training.regressor import RegressorTrainConfig, train_regressor
from training_fixtures import FEATURES


@pytest.fixture(scope="module")
def blob_generator(blob_data, tmp_path_factory) -> Path:
    """An untrained tiny CP2Image of the blob features (32 px), saved as a model folder."""
    cells = open_dataset(blob_data).cells
    values = cells[FEATURES].to_numpy(float)
    folder = tmp_path_factory.mktemp("generator") / "model"
    tiny_model(FEATURES, image_size=32, feature_mean=values.mean(0), feature_scale=values.std(0)).save_pretrained(folder)
    return folder


def test_every_view_is_labelled_with_the_measurement_of_that_very_image(blob_data, blob_generator):
    from cp2image.models import CP2Image

    model = CP2Image.from_pretrained(blob_generator)
    profiles = open_dataset(blob_data).cells.iloc[:6]
    views = generated_views(model, profiles, GeneratedViewsConfig(edits_per_request=2))
    assert len(views) == 18 and views.images.shape == (18, 3, 32, 32)
    assert views.edited.tolist() == [False] * 6 + [True] * 12
    np.testing.assert_array_equal(views.requests[:6], model.normalise(profiles, warn=False))
    np.testing.assert_array_equal(views.images, model.generate_from_normalised(views.requests, refine=False))
    pd.testing.assert_frame_equal(views.measured, measure(views.images).reset_index(drop=True))


def test_refined_views_are_drawn_by_the_models_own_refinement(blob_data, blob_generator, blob_regressor, tmp_path):
    from cp2image.models import CP2Image
    from cp2image.models.refine import RefineConfig, install_critic

    folder = tmp_path / "with-critic"
    CP2Image.from_pretrained(blob_generator).save_pretrained(folder)
    install_critic(blob_regressor, folder, config=RefineConfig(steps=3, lr=0.5, min_r=-1.0))
    model = CP2Image.from_pretrained(folder)
    profiles = open_dataset(blob_data).cells.iloc[:4]
    views = generated_views(model, profiles, GeneratedViewsConfig(edits_per_request=0, refined=True))
    assert views.refined.tolist() == [False] * 4 + [True] * 4
    np.testing.assert_array_equal(views.images[4:], model.generate(profiles))  # the default, refined draw
    assert not np.array_equal(views.images[4:], views.images[:4])  # refinement moved something
    with pytest.raises(ValueError, match="critic"):
        generated_views(CP2Image.from_pretrained(blob_generator), profiles, GeneratedViewsConfig(refined=True))


def test_an_edit_moves_one_feature_by_at_most_max_sd_and_the_others_along_its_coupling():
    z = np.random.default_rng(0).multivariate_normal(np.zeros(3), [[1, .6, 0], [.6, 1, .2], [0, .2, 1]], 400)
    z = z.astype(np.float32)
    config = GeneratedViewsConfig(edits_per_request=1, max_edit_sd=1.5)
    shift = edited_requests(z, config) - z
    coupling = coupling_matrix(z)
    for row in shift[:50]:
        # the shift is δ · C[:, j] for one feature j, with |δ| ≤ max_edit_sd
        fits = [j for j in range(3) if np.allclose(row, row[j] * coupling[:, j], atol=1e-5)]
        assert fits and abs(row[fits[0]]) <= 1.5 + 1e-6


def test_no_edits_means_the_requests_alone_and_bad_settings_are_refused():
    z = np.zeros((4, 3), np.float32)
    assert edited_requests(z, GeneratedViewsConfig(edits_per_request=0)).shape == (0, 3)
    with pytest.raises(ValueError, match="edits_per_request"):
        GeneratedViewsConfig(edits_per_request=-1)
    with pytest.raises(ValueError, match="max_edit_sd"):
        GeneratedViewsConfig(max_edit_sd=0)
    with pytest.raises(ValueError, match="generated_edits"):
        RegressorTrainConfig(generated_edits=-1)


def test_regressor_trained_with_generated_views_records_how_it_reads_them(blob_data, blob_generator, tmp_path):
    config = RegressorTrainConfig(steps=4, batch_size=8, heldout_split="test", widths=[4, 8], progress=False,
                                  generated_by=str(blob_generator), generated_edits=1)
    model = train_regressor(blob_data, tmp_path / "critic", config)
    prov = model.config.provenance
    # 40 training cells → 40 requests + 40 edited ones; 8 test cells drawn for the generated held-out r
    assert prov["generated_views"] == 80 and prov["heldout_generated_views"] == 8
    assert np.isfinite(prov["heldout_r_generated_median"])
    rows = list(csv.DictReader(open(tmp_path / "critic" / "heldout_r.csv")))
    assert list(rows[0]) == ["feature", "heldout_r", "heldout_r_generated"]
    assert [r["feature"] for r in rows] == model.config.feature_names


def test_a_generator_of_another_crop_size_is_refused(blob_data, tmp_path):
    cells = open_dataset(blob_data).cells
    other = tmp_path / "model68"
    tiny_model(FEATURES, feature_mean=cells[FEATURES].mean().tolist(),
               feature_scale=cells[FEATURES].std().tolist()).save_pretrained(other)
    with pytest.raises(ValueError, match="one crop shape"):
        train_regressor(blob_data, tmp_path / "critic", RegressorTrainConfig(
            steps=1, batch_size=8, heldout_split="test", widths=[4, 8], progress=False, generated_by=str(other)))

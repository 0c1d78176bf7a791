"""Bundling a run: held-out figure, model card from provenance, strict-loading bundle."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from cp2image.data.dataset import open_dataset
from cp2image.models import CP2Image
from cp2image.training.bundle import comparison_figure, held_out_cells, model_card, write_bundle
from cp2image.training.config import TrainConfig
from cp2image.training.trainer import Trainer


def test_bundle_holds_generator_config_and_card(blob_data, tmp_path):
    cfg = TrainConfig(steps=2, batch_size=8, base_filters=4, kernel_size=3, progress=False, grid_every=2)
    result = Trainer(cfg, blob_data, tmp_path / "run", command="cp2image train --data X").run()
    model = CP2Image.from_pretrained(result.model_dir)
    held = held_out_cells(model, open_dataset(blob_data), split="test")
    assert len(held.cells) == 8 and (held.cells["Metadata_Split"] == "test").all()
    assert held.generated.shape == held.original.shape == (8, 3, 32, 32)
    figure = comparison_figure(held, tmp_path / "fig.png", title="blobs", n=4)
    assert Image.open(figure).size[0] > 100
    card = model_card(model, title="Blob model", description="d", intended_use="u", limitations="l",
                      metrics={"feature r": "n/a"}, figure="fig.png")
    assert card.startswith("---\nlibrary_name: cp2image")
    assert "`cp2image train --data X`" in card and "Steps: 2 × batch 8" in card and "feature r: n/a" in card
    bundle = write_bundle(result.model_dir, tmp_path / "bundle", card)
    assert sorted(p.name for p in bundle.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    state_keys = json.loads((bundle / "config.json").read_text()).keys()
    assert "feature_mean" in state_keys and "provenance" in state_keys
    x = held.cells
    np.testing.assert_array_equal(CP2Image.from_pretrained(bundle).generate(x), model.generate(x))



def test_the_card_of_a_fine_tune_states_its_warm_start_and_totals(blob_data, tmp_path):
    small = dict(batch_size=8, base_filters=4, kernel_size=3, progress=False, grid_every=2)
    first = Trainer(TrainConfig(steps=2, **small), blob_data, tmp_path / "base").run()
    tuned = Trainer(TrainConfig(steps=1, init_from=str(first.model_dir), **small), blob_data, tmp_path / "ft").run()
    card = model_card(CP2Image.from_pretrained(tuned.model_dir), title="t", description="d", intended_use="u",
                      limitations="l")
    assert "Steps: 1 × batch 8" in card and "Warm start:" in card and "in all 3 steps" in card

def _evaluation_folder(path, *, fraction: float) -> None:
    """The part of `cp2image evaluate`'s output the bundle cites: metrics.json and correlation.csv."""
    path.mkdir(parents=True)
    correlation = {"available": True, "threshold": 0.5, "fraction_above": fraction, "n_features": 3,
                   "n_defined": 2, "n_cells": 8, "median_r": 0.61,
                   "top": [{"feature": "Cells_AreaShape_Area", "pearson_r": 0.9}]}
    (path / "metrics.json").write_text(json.dumps({"dataset": {"split": "test"}, "correlation": correlation}))
    (path / "correlation.csv").write_text("feature,pearson_r\nCells_AreaShape_Area,0.9\n")


def test_bundle_command_cites_the_evaluation_and_writes_no_second_result_format(blob_data, tmp_path):
    from cp2image.cli import main

    cfg = TrainConfig(steps=2, batch_size=8, base_filters=4, kernel_size=3, progress=False, grid_every=2)
    run = Trainer(cfg, blob_data, tmp_path / "run").run().model_dir.parent
    _evaluation_folder(tmp_path / "eval", fraction=0.25)
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"description": "d", "intended_use": "u", "limitations": "l"}))
    target = tmp_path / "bundle"
    args = ["bundle", "--run", str(run), "--data", str(blob_data), "--target", str(target), "--title", "Blobs",
            "--card-text", str(card), "--evaluation", str(tmp_path / "eval")]
    assert main(args) == 0
    assert sorted(p.name for p in target.iterdir()) == ["README.md", "config.json", "evaluation", "model.safetensors"]
    assert sorted(p.name for p in (target / "evaluation").iterdir()) == ["correlation.csv", "metrics.json"]
    readme = (target / "README.md").read_text()
    assert "25.0% of features have Pearson r > 0.5; median r = 0.610" in readme
    assert "Cells_AreaShape_Area (0.90)" in readme


def test_bundle_command_names_what_is_missing(blob_data, tmp_path, capsys):
    from cp2image.cli import main

    card = tmp_path / "card.json"
    card.write_text(json.dumps({"description": "d"}))
    args = ["bundle", "--run", str(tmp_path / "no-run"), "--data", str(blob_data), "--target", str(tmp_path / "b"),
            "--title", "T", "--card-text", str(card)]
    assert main(args) == 2
    assert "card text lacks ['intended_use', 'limitations']" in capsys.readouterr().err

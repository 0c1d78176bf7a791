"""Trainer: exact resume, outputs and refusal paths (tiny models, CPU). DDP: tests/scale/test_ddp_ranks.py."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cp2image.models import CP2Image
from cp2image.training.checkpoint import load_checkpoint
from cp2image.training.config import TrainConfig
from cp2image.training.trainer import Trainer

def tiny_config(**overrides) -> TrainConfig:
    base = dict(steps=6, batch_size=8, base_filters=4, kernel_size=3, latent_dim=8, gamma=[0.1] * 5,
                gamma_delay=[0, 1, 2, 3, 4], gamma_ramp=[2] * 5, log_every=2, grid_every=3,
                checkpoint_every=3, grid_cells=4, progress=False, seed=0)
    base.update(overrides)
    return TrainConfig(**base)


def checkpoint_tensors(run: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run / "checkpoint.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith(("net.", "optim.", "ema."))}


def test_twenty_steps_equal_ten_then_resume_then_ten(blob_data, tmp_path):
    cfg = dict(steps=20, checkpoint_every=10, ema_decay=0.9)
    straight = Trainer(tiny_config(**cfg), blob_data, tmp_path / "a").run()
    Trainer(tiny_config(**{**cfg, "steps": 10}), blob_data, tmp_path / "b").run()
    resumed = Trainer(tiny_config(**cfg), blob_data, tmp_path / "b", resume=True).run()
    assert straight.steps == resumed.steps == 20
    a, b = checkpoint_tensors(tmp_path / "a"), checkpoint_tensors(tmp_path / "b")
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "b" / "metrics.csv"))]
    assert steps == list(range(2, 21, 2))  # no step logged twice after the resume


@pytest.mark.parametrize("kind", ["cp2image", "vae", "vaeplus", "lsgan"])
def test_every_model_kind_trains_and_exports(blob_data, tmp_path, kind):
    result = Trainer(tiny_config(model=kind, steps=4), blob_data, tmp_path / kind).run()
    assert result.steps == 4 and np.isfinite(list(result.final_losses.values())).all()
    assert (result.model_dir / "model.safetensors").exists()
    config = json.loads((result.model_dir / "config.json").read_text())
    assert config["provenance"]["model_kind"] == kind and config["provenance"]["steps"] == 4


def test_cp2image_run_writes_metrics_grid_and_loadable_model(blob_data, tmp_path):
    result = Trainer(tiny_config(steps=6), blob_data, tmp_path / "run").run()
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert {"mse", "loss_d", "loss_hidden", "samples_per_s"} <= rows[0].keys()
    grid = Image.open(result.grid_path)
    assert grid.size[1] == 2 * (2 * (32 + 2) + 2)  # two rows (original, generated), 2× upscaled
    assert sorted(p.name for p in (tmp_path / "run" / "grids").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    model = CP2Image.from_pretrained(result.model_dir)
    assert model.feature_names[:2] == ["Nuclei_AreaShape_Area", "Nuclei_Intensity_MeanIntensity_DNA"]
    assert model.config.provenance["training_cells"]["cells"] == 40


def test_mse_falls_when_training_longer(blob_data, tmp_path):
    cfg = tiny_config(steps=60, gamma=[0.0] * 5, lr=3e-3, log_every=10, grid_every=60, checkpoint_every=60)
    result = Trainer(cfg, blob_data, tmp_path / "run").run()
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert float(rows[-1]["mse"]) < 0.6 * float(rows[0]["mse"])


def test_existing_run_is_not_overwritten_without_resume(blob_data, tmp_path):
    Trainer(tiny_config(steps=3), blob_data, tmp_path / "run").run()
    with pytest.raises(FileExistsError, match="pass --resume"):
        Trainer(tiny_config(steps=3), blob_data, tmp_path / "run")


def test_resume_with_different_maths_is_refused(blob_data, tmp_path):
    Trainer(tiny_config(steps=3), blob_data, tmp_path / "run").run()
    with pytest.raises(ValueError, match=r"\['lr'\] differ from the checkpoint"):
        Trainer(tiny_config(steps=6, lr=0.5), blob_data, tmp_path / "run", resume=True).run()


def test_init_from_copies_weights_but_restarts_the_step_count(blob_data, tmp_path):
    Trainer(tiny_config(steps=3), blob_data, tmp_path / "base").run()
    tuned = Trainer(tiny_config(steps=1, init_from=str(tmp_path / "base"), lr=1e-12), blob_data,
                    tmp_path / "tuned").run()
    assert tuned.steps == 1
    base, new = checkpoint_tensors(tmp_path / "base"), checkpoint_tensors(tmp_path / "tuned")
    key = "net.generator.generator.dense.weight"
    torch.testing.assert_close(new[key], base[key], atol=1e-6, rtol=0)  # lr ≈ 0: weights carried over


def test_a_fine_tune_records_the_training_its_weights_started_from(blob_data, tmp_path):
    """init_from restarts the step count, so the export must say how much training the weights hold in all."""
    Trainer(tiny_config(steps=3), blob_data, tmp_path / "base").run()
    base_wall = load_checkpoint(tmp_path / "base" / "checkpoint.safetensors")[1]["total_wall_seconds"]
    Trainer(tiny_config(steps=2, init_from=str(tmp_path / "base" / "checkpoint.safetensors")), blob_data,
            tmp_path / "tuned").run()
    provenance = CP2Image.from_pretrained(tmp_path / "tuned" / "model").config.provenance
    assert provenance["steps"] == 2 and provenance["total_steps"] == 5
    assert provenance["warm_start"]["steps"] == 3
    assert provenance["total_wall_seconds"] == pytest.approx(base_wall + provenance["wall_seconds"], abs=0.2)

    # a fine-tune of the fine-tune counts all three legs, and a resume keeps the record
    Trainer(tiny_config(steps=1, init_from=str(tmp_path / "tuned")), blob_data, tmp_path / "again").run()
    Trainer(tiny_config(steps=2, init_from=str(tmp_path / "tuned")), blob_data, tmp_path / "again",
            resume=True).run()
    again = CP2Image.from_pretrained(tmp_path / "again" / "model").config.provenance
    assert again["steps"] == 2 and again["total_steps"] == 7


def test_a_run_from_scratch_has_no_warm_start_record(blob_data, tmp_path):
    Trainer(tiny_config(steps=1), blob_data, tmp_path / "run").run()
    provenance = CP2Image.from_pretrained(tmp_path / "run" / "model").config.provenance
    assert "warm_start" not in provenance and "total_steps" not in provenance


def test_init_from_a_different_architecture_is_refused(blob_data, tmp_path):
    Trainer(tiny_config(steps=1), blob_data, tmp_path / "base").run()
    with pytest.raises(ValueError, match="does not match this config"):
        Trainer(tiny_config(steps=1, base_filters=8, init_from=str(tmp_path / "base")), blob_data,
                tmp_path / "other").run()


def test_validation_mse_is_logged_at_grid_steps_when_a_val_split_exists(tmp_path):
    from training_fixtures import blob_dataset
    import pandas as pd
    from cp2image.data.dataset import open_dataset, replace_cells

    data = blob_dataset(tmp_path / "ds")
    cells = open_dataset(data).cells
    cells["Metadata_Split"] = np.where(np.arange(len(cells)) < 40, "train", "val")
    replace_cells(data, cells)
    Trainer(tiny_config(steps=6, grid_every=3), data, tmp_path / "run").run()
    rows = pd.read_csv(tmp_path / "run" / "validation.csv")
    assert rows["step"].tolist() == [3, 6] and (rows["val_cells"] == 8).all()
    assert ((rows["val_mse"] > 0) & (rows["val_mse"] < 1)).all()

"""Edge-replicating convolution margins (`padding_mode = "replicate"`), against the frame zero padding draws.

Off by default (a default run builds the paper's zero-padded generator); on, the exported model
says so in its config, so the torch and NumPy inference paths both draw its images with the
margin it was trained with, and a zero-padded model can be its warm start.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cp2image.models import CP2Image
from cp2image.models.numpy_generator import read_lean_generator
from cp2image.training.config import TrainConfig
from cp2image.training.trainer import Trainer
from training_fixtures import tiny_run_config as tiny


def test_zero_padding_is_the_default_and_other_modes_are_checked():
    assert TrainConfig().padding_mode == "zeros"
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        TrainConfig(padding_mode="reflect")
    with pytest.raises(ValueError, match="CP2Image option"):
        TrainConfig(model="vae", padding_mode="replicate")


def test_a_replicate_run_warm_starts_from_a_zero_padded_model_and_exports_its_margin(blob_data, tmp_path):
    first = Trainer(tiny(), blob_data, tmp_path / "zeros").run()
    run = Trainer(tiny(padding_mode="replicate", init_from=str(first.model_dir)), blob_data, tmp_path / "rep").run()
    model = CP2Image.from_pretrained(run.model_dir).eval()
    assert model.config.padding_mode == "replicate"
    convs = [m for m in model.generator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.padding_mode == "replicate" for c in convs)
    assert CP2Image.from_pretrained(first.model_dir).config.padding_mode == "zeros"
    z = np.random.default_rng(0).normal(size=(3, len(model.feature_names))).astype(np.float32)
    lean = read_lean_generator(run.model_dir).generate_from_normalised(z)
    drawn = model.generate_from_normalised(z)
    assert int(np.abs(lean.astype(int) - drawn.astype(int)).max()) <= 1  # same images, up to uint8 rounding

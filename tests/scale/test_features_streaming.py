"""`cp2image features` streams: its rows go to parquet row group by row group, and the
result is the table that measuring everything in memory gives."""
from __future__ import annotations

import importlib
from functools import partial

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import cp2image.commands.features as features_command
from cp2image.cli import main
from cp2image.data import open_dataset, write_dataset
from cp2image.data.simulate.pipeline import SimulationConfig, simulate_well
from cp2image.data.simulate.screen import ScreenConfig, plan_screen
from cp2image.features import FAILED_COLUMN, MeasureConfig, measure

SMALL_CHUNKS = MeasureConfig(chunk_size=8)
measure_module = importlib.import_module("cp2image.features.measure")  # the package's `measure` is the function


def _crops() -> np.ndarray:
    config = SimulationConfig(screen=ScreenConfig(n_cells=40, seed=2, replicates=1, dmso_wells_per_plate=1,
                                                  compounds=("taxol",)), measure=False)
    return np.concatenate([simulate_well(p, config=config)[0] for p in plan_screen(config.screen)[:4]])


def test_streamed_features_equal_the_in_memory_result(tmp_path, monkeypatch, capsys):
    crops = _crops()
    n = len(crops)
    cells = pd.DataFrame({
        "Metadata_Plate": np.where(np.arange(n) < n // 2, "P2", "P1"),  # P2 first: plate order kept
        "Metadata_Well": "B02", "Metadata_Compound": np.where(np.arange(n) % 3 == 0, "DMSO", "taxol"),
        "Metadata_Concentration": (np.arange(n) % 3 != 0) * 1.0,
        "Nuclei_AreaShape_Area": np.zeros(n),  # stale, replaced
    })
    path = write_dataset(tmp_path / "ds", crops, cells)
    real_iter = measure_module.iter_measure
    monkeypatch.setattr(measure_module, "iter_measure", partial(real_iter, config=SMALL_CHUNKS))
    monkeypatch.setattr(features_command, "ROW_GROUP", 12)  # 8-crop chunks → a row group every 2 chunks
    assert main(["features", str(path), "--jobs", "1", "--no-progress"]) == 0
    assert "measured 492 features" in capsys.readouterr().out

    feats = measure(crops, config=SMALL_CHUNKS)
    expected = cells.drop(columns=["Nuclei_AreaShape_Area"]).join(feats)
    stored = open_dataset(path)
    pd.testing.assert_frame_equal(stored.cells, expected)
    groups = pq.ParquetFile(path / "cells.parquet").metadata.num_row_groups
    assert groups == -(-n // 16)
    assert "normalisation" not in stored.meta

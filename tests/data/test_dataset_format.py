"""The dataset directory contract: round-trips, validation and atomic writes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cp2image.data import (
    DatasetError,
    DatasetWriter,
    assign_splits_by_well,
    feature_columns,
    metadata_columns,
    open_dataset,
    write_dataset,
)


def tiny_cells(n: int = 8) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Metadata_Plate": ["P1"] * (n // 2) + ["P2"] * (n - n // 2),
            "Metadata_Well": [f"B0{i % 4 + 2}" for i in range(n)],
            "Metadata_Compound": ["DMSO"] * n,
            "Metadata_Concentration": [0.0] * n,
            "Nuclei_AreaShape_Area": np.arange(n, dtype=float) + 100,
            "Cells_Intensity_MeanIntensity_Actin": np.linspace(0, 1, n),
            "Truth_NucleusRadius": np.ones(n),
        }
    )


def tiny_images(n: int = 8, size: int = 68) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(n, 3, size, size), dtype=np.uint8)


def test_roundtrip_keeps_images_rows_and_feature_order(tmp_path):
    images, cells = tiny_images(), tiny_cells()
    write_dataset(tmp_path / "ds", images, cells)
    ds = open_dataset(tmp_path / "ds")
    assert isinstance(ds.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(ds.images), images)
    pd.testing.assert_frame_equal(ds.cells, cells)
    assert ds.feature_names == ["Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin"]
    assert ds.meta["channels"] == ["DNA", "Tubulin", "Actin"]
    assert ds.meta["crop_size"] == 68


def test_packed_dataset_unpacks_to_the_same_images(tmp_path):
    images, cells = tiny_images(), tiny_cells()
    write_dataset(tmp_path / "packed", images, cells, packed=True)
    assert not (tmp_path / "packed" / "images.npy").exists()
    ds = open_dataset(tmp_path / "packed")
    np.testing.assert_array_equal(np.asarray(ds.images), images)


def test_columns_are_classified_by_cellprofiler_prefix():
    cells = tiny_cells()
    assert feature_columns(cells) == ["Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin"]
    assert metadata_columns(cells) == [
        "Metadata_Plate", "Metadata_Well", "Metadata_Compound", "Metadata_Concentration"
    ]


@pytest.mark.parametrize(
    ("images", "cells", "message"),
    [
        (tiny_images().astype(np.float32), tiny_cells(), "dtype float32"),
        (tiny_images()[:, :2], tiny_cells(), "expected \\(N, 3, H, W\\)"),
        (tiny_images(7), tiny_cells(8), "8 rows but images.npy has 7"),
        (tiny_images(), tiny_cells().drop(columns="Metadata_Well"), "Metadata_Well"),
    ],
)
def test_invalid_contents_are_refused_with_the_problem_named(tmp_path, images, cells, message):
    with pytest.raises(DatasetError, match=message):
        write_dataset(tmp_path / "bad", images, cells)
    assert not (tmp_path / "bad").exists()
    assert list(tmp_path.iterdir()) == []


def test_opening_names_the_missing_file(tmp_path):
    write_dataset(tmp_path / "ds", tiny_images(), tiny_cells())
    (tmp_path / "ds" / "dataset.json").unlink()
    with pytest.raises(DatasetError, match="missing dataset.json"):
        open_dataset(tmp_path / "ds")


def test_feature_list_must_exist_in_the_table(tmp_path):
    write_dataset(tmp_path / "ds", tiny_images(), tiny_cells())
    meta_path = tmp_path / "ds" / "dataset.json"
    meta = json.loads(meta_path.read_text())
    meta["features"].append("Nuclei_AreaShape_Missing")
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="Nuclei_AreaShape_Missing"):
        open_dataset(tmp_path / "ds")


def test_streaming_writer_appears_only_when_closed(tmp_path):
    images, cells = tiny_images(), tiny_cells()
    target = tmp_path / "streamed"
    writer = DatasetWriter(target, capacity=10)
    writer.append(images[:4], cells.iloc[:4])
    assert not target.exists()
    writer.append(images[4:], cells.iloc[4:])
    writer.close()
    ds = open_dataset(target)
    assert len(ds) == 8  # trimmed from capacity 10
    np.testing.assert_array_equal(np.asarray(ds.images), images)


def test_streaming_writer_failure_leaves_nothing(tmp_path):
    target = tmp_path / "streamed"
    with pytest.raises(RuntimeError):
        with DatasetWriter(target, capacity=8) as writer:
            writer.append(tiny_images(4), tiny_cells(4))
            raise RuntimeError("simulated crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_splits_never_put_one_well_in_two_splits():
    n = 200
    rng = np.random.default_rng(1)
    cells = pd.DataFrame(
        {
            "Metadata_Plate": rng.choice(["P1", "P2", "P3"], n),
            "Metadata_Well": rng.choice([f"C{i:02d}" for i in range(10)], n),
            "Metadata_Compound": "DMSO",
            "Metadata_Concentration": 0.0,
        }
    )
    split = assign_splits_by_well(cells, seed=3)
    per_well = split.groupby([cells["Metadata_Plate"], cells["Metadata_Well"]]).nunique()
    assert per_well.max() == 1
    assert set(split) == {"train", "val", "test"}
    pd.testing.assert_series_equal(split, assign_splits_by_well(cells, seed=3))


def test_streaming_writer_trims_large_capacities_to_what_was_written(tmp_path):
    images, cells = tiny_images(), tiny_cells()
    with DatasetWriter(tmp_path / "big", capacity=100_000) as writer:
        writer.append(images, cells)
    path = tmp_path / "big" / "images.npy"
    ds = open_dataset(tmp_path / "big")
    assert ds.images.shape == (8, 3, 68, 68)
    assert path.stat().st_size == ds.images.offset + images.nbytes
    np.testing.assert_array_equal(np.asarray(ds.images), images)
    assert oct((tmp_path / "big").stat().st_mode & 0o777) == oct(0o755)

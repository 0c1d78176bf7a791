"""`DatasetWriter` streams: rows go to parquet parts and images to the file as they come,
memory does not grow with the cells written, and a resumable writer picks up after the
last batch it recorded."""
from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cp2image.data import DatasetError, DatasetWriter, open_dataset, write_dataset
from cp2image.data.writer import JOURNAL


def _cells(n: int, start: int = 0) -> pd.DataFrame:
    i = np.arange(start, start + n)
    return pd.DataFrame({
        "Metadata_Plate": "P1", "Metadata_Well": [f"B{k % 5 + 2:02d}" for k in i],
        "Metadata_Compound": np.where(i % 4 == 0, "DMSO", "taxol"), "Metadata_Concentration": (i % 4 != 0) * 1.0,
        "Nuclei_AreaShape_Area": i * 1.5, "Cells_Intensity_MeanIntensity_Actin": np.sin(i),
    })


def _images(n: int, start: int = 0, size: int = 8) -> np.ndarray:
    return (np.arange(start, start + n, dtype=np.uint64)[:, None, None, None] * 7
            + np.arange(3 * size * size).reshape(1, 3, size, size)).astype(np.uint8)


BATCHES = [(0, 5), (5, 3), (8, 7), (15, 4)]  # (start, rows)


def _write(writer: DatasetWriter, batches) -> None:
    for start, n in batches:
        writer.append(_images(n, start), _cells(n, start), unit=f"well{start}")


def test_streamed_dataset_equals_one_written_at_once(tmp_path):
    with DatasetWriter(tmp_path / "streamed", capacity=30, crop_size=8) as writer:
        _write(writer, BATCHES)
    whole = write_dataset(tmp_path / "whole", _images(19), _cells(19))
    streamed, reference = open_dataset(tmp_path / "streamed"), open_dataset(whole)
    np.testing.assert_array_equal(np.asarray(streamed.images), np.asarray(reference.images))
    pd.testing.assert_frame_equal(streamed.cells, reference.cells)
    assert streamed.meta["features"] == reference.meta["features"]
    # one row group per appended batch; the parts are gone
    assert [pq.ParquetFile(tmp_path / "streamed" / "cells.parquet").metadata.row_group(g).num_rows
            for g in range(4)] == [n for _, n in BATCHES]
    assert sorted(p.name for p in (tmp_path / "streamed").iterdir()) == ["cells.parquet", "dataset.json", "images.npy"]


def test_a_batch_with_other_columns_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="different columns from the first batch"):
        with DatasetWriter(tmp_path / "ds", capacity=10, crop_size=8) as writer:
            writer.append(_images(3), _cells(3))
            writer.append(_images(3, 3), _cells(3, 3).drop(columns=["Nuclei_AreaShape_Area"]))
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("missing", [None, np.nan], ids=["None", "NaN"])
def test_a_column_missing_in_one_batch_reads_back_as_concatenating_the_batches(tmp_path, missing):
    first, second = _cells(3), _cells(3, 3)
    first["Metadata_MoA"] = missing  # all missing here: parquet type null (None) or double (NaN)
    second["Metadata_MoA"] = "Microtubule stabilizers"
    with DatasetWriter(tmp_path / "ds", capacity=6, crop_size=8) as writer:
        writer.append(_images(3), first)
        writer.append(_images(3, 3), second)
    at_once = write_dataset(tmp_path / "at_once", _images(6), pd.concat([first, second], ignore_index=True))
    pd.testing.assert_frame_equal(open_dataset(tmp_path / "ds").cells, open_dataset(at_once).cells)


def test_memory_does_not_grow_with_the_rows_written(tmp_path):
    """Python-heap growth between batch 10 and batch 60 stays far below the 50 batches' data (≈ 24 MB)."""
    n = 2000
    cells = _cells(n)
    images = np.zeros((n, 3, 8, 8), np.uint8)
    with DatasetWriter(tmp_path / "ds", capacity=60 * n, crop_size=8) as writer:
        tracemalloc.start()
        for k in range(60):
            writer.append(images, cells)
            if k == 9:
                after_10 = tracemalloc.get_traced_memory()[0]
        after_60 = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    rows_bytes = 50 * int(cells.memory_usage(deep=True).sum() + images.nbytes)
    assert after_60 - after_10 < 0.02 * rows_bytes, (after_10, after_60, rows_bytes)
    assert len(open_dataset(tmp_path / "ds")) == 60 * n


def test_a_resumable_writer_continues_after_the_last_recorded_batch(tmp_path):
    target = tmp_path / "ds"
    with pytest.raises(RuntimeError, match="crash"):
        with DatasetWriter(target, capacity=30, crop_size=8, resume_key="k1") as writer:
            _write(writer, BATCHES[:2])
            raise RuntimeError("crash after two batches")
    assert not target.exists() and (tmp_path / ".ds.partial").is_dir()
    with DatasetWriter(target, capacity=30, crop_size=8, resume_key="k1") as writer:
        assert writer.done == ["well0", "well5"] and writer.count == 8
        _write(writer, BATCHES[2:])
    with DatasetWriter(tmp_path / "straight", capacity=30, crop_size=8, resume_key="k1") as writer:
        _write(writer, BATCHES)
    resumed, straight = open_dataset(target), open_dataset(tmp_path / "straight")
    np.testing.assert_array_equal(np.asarray(resumed.images), np.asarray(straight.images))
    pd.testing.assert_frame_equal(resumed.cells, straight.cells)
    assert (target / "cells.parquet").read_bytes() == (tmp_path / "straight" / "cells.parquet").read_bytes()
    assert not (tmp_path / ".ds.partial").exists()


def test_a_cut_journal_line_and_an_unrecorded_part_are_redone(tmp_path):
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "ds", capacity=30, crop_size=8, resume_key="k") as writer:
            _write(writer, BATCHES[:3])
            raise RuntimeError
    journal = tmp_path / ".ds.partial" / JOURNAL
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # killed mid-line
    with DatasetWriter(tmp_path / "ds", capacity=30, crop_size=8, resume_key="k") as writer:
        assert writer.done == ["well0", "well5"]
        _write(writer, BATCHES[2:])
    ds = open_dataset(tmp_path / "ds")
    pd.testing.assert_frame_equal(ds.cells, _cells(19))
    np.testing.assert_array_equal(np.asarray(ds.images), _images(19))


def test_unfinished_work_of_another_configuration_is_discarded(tmp_path):
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "ds", capacity=30, crop_size=8, resume_key="old") as writer:
            _write(writer, BATCHES[:2])
            raise RuntimeError
    state = json.loads((tmp_path / ".ds.partial" / "resume.json").read_text())
    assert state["key"] == "old"
    with DatasetWriter(tmp_path / "ds", capacity=30, crop_size=8, resume_key="new") as writer:
        assert writer.done == [] and writer.count == 0
        _write(writer, BATCHES)
    assert len(open_dataset(tmp_path / "ds")) == 19


def test_a_resumable_writer_needs_unit_names(tmp_path):
    writer = DatasetWriter(tmp_path / "ds", capacity=4, crop_size=8, resume_key="k")
    with pytest.raises(DatasetError, match="needs unit="):
        writer.append(_images(2), _cells(2))
    writer.abort()
    assert not (tmp_path / ".ds.partial").exists()


def test_each_batch_note_comes_back_with_its_unit_after_a_crash(tmp_path):
    """Ingest journals each unit's summary counts as its note, so a resumed run reports the whole dataset."""
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "ds", capacity=30, crop_size=8, resume_key="k") as writer:
            writer.append(_images(5), _cells(5), unit="a", note={"n_skipped_border": 2})
            writer.append(_images(0), _cells(0), unit="b")  # an empty unit is journaled too
            raise RuntimeError
    with DatasetWriter(tmp_path / "ds", capacity=30, crop_size=8, resume_key="k") as writer:
        assert writer.done == ["a", "b"] and writer.notes == [{"n_skipped_border": 2}, {}]
        assert writer.columns() == list(_cells(1).columns)
        writer.append(_images(3, 5), _cells(3, 5), unit="c", note={"n_written": 3})
        assert writer.notes[-1] == {"n_written": 3}

"""Bad inputs to the dataset reader: every damaged dataset is refused with a DatasetError
naming the file and the problem; nothing opens half-valid, nothing is unpickled.

The format's own cases (a missing dataset.json, features absent from the table, the
writer refusing bad contents) are in tests/data/test_dataset_format.py; here are the
damaged-file and fuzzed cases."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_helpers import PROPERTY, tiny_cells, tiny_images

from cp2image.data import DatasetError, open_dataset, write_dataset


def _copy(src: Path, into: Path) -> Path:
    dst = into / "copy"
    shutil.copytree(src, dst)
    return dst


def _without_checksum(ds: Path) -> Path:
    """Drop the stored cells.parquet digest, as in a dataset written by another tool, so
    that the structural checks behind it are reached."""
    meta = json.loads((ds / "dataset.json").read_text())
    meta.pop("checksums", None)
    (ds / "dataset.json").write_text(json.dumps(meta))
    return ds


# ----------------------------------------------------------------------------- images.npy


@PROPERTY
@given(fraction=st.floats(min_value=0.0, max_value=0.999))
def test_truncated_images_npy_is_refused_at_any_length(tiny_dataset, fraction):
    with tempfile.TemporaryDirectory() as tmp:
        ds = _copy(tiny_dataset, Path(tmp))
        data = (ds / "images.npy").read_bytes()
        (ds / "images.npy").write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(DatasetError, match=r"images\.npy.*(truncated|cannot memory-map)"):
            open_dataset(ds)


@pytest.mark.parametrize(
    "array, problem",
    [
        (tiny_images(6).astype(np.float32), r"dtype float32, expected uint8"),
        (tiny_images(6).astype(np.uint16), r"dtype uint16, expected uint8"),
        (tiny_images(6)[:, 0], r"shape \(6, 68, 68\), expected \(N, 3, H, W\)"),
        (np.concatenate([tiny_images(6), tiny_images(6)[:, :1]], axis=1), r"shape \(6, 4, 68, 68\)"),
        (tiny_images(6)[:, :, :, :60], r"crops must be square"),
    ],
    ids=["float32", "uint16", "no-channel-axis", "four-channels", "not-square"],
)
def test_images_of_wrong_dtype_or_shape_are_refused(tiny_dataset, array, problem):
    np.save(tiny_dataset / "images.npy", array)
    with pytest.raises(DatasetError, match=problem):
        open_dataset(tiny_dataset)


def test_object_array_images_are_refused_without_unpickling(tiny_dataset):
    """A pickled object array in images.npy must never be unpickled (code execution)."""
    payload = np.empty(6, dtype=object)
    payload[:] = [{"evil": i} for i in range(6)]
    np.save(tiny_dataset / "images.npy", payload, allow_pickle=True)
    with pytest.raises(DatasetError, match=r"images\.npy.*cannot memory-map"):
        open_dataset(tiny_dataset)


def test_missing_images_is_refused(tiny_dataset):
    (tiny_dataset / "images.npy").unlink()
    with pytest.raises(DatasetError, match=r"missing images\.npy"):
        open_dataset(tiny_dataset)


def test_corrupt_packed_images_are_refused(tmp_path):
    ds = write_dataset(tmp_path / "packed", tiny_images(6), tiny_cells(6), packed=True)
    data = (ds / "images.npz").read_bytes()
    (ds / "images.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"images\.npz: cannot read packed images"):
        open_dataset(ds)


# ----------------------------------------------------------------------------- cells.parquet


@PROPERTY
@given(n_images=st.integers(1, 12), n_rows=st.integers(0, 12))
def test_row_count_mismatch_is_refused_naming_both_counts(n_images, n_rows):
    if n_images == n_rows:
        n_rows += 1
    with tempfile.TemporaryDirectory() as tmp:
        ds = write_dataset(Path(tmp) / "ds", tiny_images(n_images), tiny_cells(n_images))
        tiny_cells(n_rows).to_parquet(_without_checksum(ds) / "cells.parquet", index=False)
        with pytest.raises(DatasetError, match=rf"cells\.parquet has {n_rows} rows but images\.npy has {n_images}"):
            open_dataset(ds)


@PROPERTY
@given(fraction=st.floats(min_value=0.0, max_value=0.99))
def test_truncated_parquet_is_refused_at_any_length(tiny_dataset, fraction):
    with tempfile.TemporaryDirectory() as tmp:
        ds = _copy(tiny_dataset, Path(tmp))
        data = (ds / "cells.parquet").read_bytes()
        (ds / "cells.parquet").write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(DatasetError, match=r"cells\.parquet: cannot read parquet"):
            open_dataset(ds)


@PROPERTY
@given(junk=st.binary(min_size=0, max_size=2000))
def test_random_bytes_as_parquet_are_refused(tiny_dataset, junk):
    with tempfile.TemporaryDirectory() as tmp:
        ds = _copy(tiny_dataset, Path(tmp))
        (ds / "cells.parquet").write_bytes(junk)
        with pytest.raises(DatasetError, match=r"cells\.parquet: cannot read parquet"):
            open_dataset(ds)


def test_csv_saved_as_parquet_is_refused(tiny_dataset):
    tiny_cells(6).to_csv(_without_checksum(tiny_dataset) / "cells.parquet", index=False)
    with pytest.raises(DatasetError, match=r"cannot read parquet"):
        open_dataset(tiny_dataset)


def test_a_table_swapped_in_by_hand_is_refused_by_its_checksum(tiny_dataset):
    tiny_cells(6).assign(Nuclei_AreaShape_Area=0.0).to_parquet(tiny_dataset / "cells.parquet", index=False)
    with pytest.raises(DatasetError, match=r"content does not match the SHA-256 in dataset\.json"):
        open_dataset(tiny_dataset)


def test_missing_required_metadata_is_named(tiny_dataset):
    tiny_cells(6).drop(columns=["Metadata_Well"]).to_parquet(_without_checksum(tiny_dataset) / "cells.parquet",
                                                             index=False)
    with pytest.raises(DatasetError, match=r"lacks required metadata column\(s\) \['Metadata_Well'\]"):
        open_dataset(tiny_dataset)


def test_missing_cells_is_refused(tiny_dataset):
    (tiny_dataset / "cells.parquet").unlink()
    with pytest.raises(DatasetError, match=r"missing cells\.parquet"):
        open_dataset(tiny_dataset)


# ----------------------------------------------------------------------------- dataset.json


@PROPERTY
@given(junk=st.binary(min_size=0, max_size=300))
def test_dataset_json_that_is_not_a_json_object_is_refused(tiny_dataset, junk):
    try:
        parsed = json.loads(junk)
        if isinstance(parsed, dict):
            return  # a valid object is not a bad input
    except (ValueError, UnicodeDecodeError):
        pass
    with tempfile.TemporaryDirectory() as tmp:
        ds = _copy(tiny_dataset, Path(tmp))
        (ds / "dataset.json").write_bytes(junk)
        with pytest.raises(DatasetError, match=r"dataset\.json: (not valid JSON|expected a JSON object)"):
            open_dataset(ds)


def test_a_file_or_missing_path_is_not_a_dataset(tmp_path):
    (tmp_path / "file.npy").write_bytes(b"x")
    for path in (tmp_path / "file.npy", tmp_path / "absent"):
        with pytest.raises(DatasetError, match=r"not a dataset directory"):
            open_dataset(path)


# ----------------------------------------------------------------------------- writer input


def test_writer_refuses_duplicated_columns(tmp_path):
    cells = tiny_cells(6)
    cells = pd.concat([cells, cells[["Nuclei_AreaShape_Area"]]], axis=1)
    with pytest.raises(DatasetError, match=r"duplicated column\(s\) \['Nuclei_AreaShape_Area'\]"):
        write_dataset(tmp_path / "out", tiny_images(6), cells)
    assert list(tmp_path.iterdir()) == []


@PROPERTY
@given(position=st.floats(min_value=0.0, max_value=0.999), bit=st.integers(0, 7))
def test_any_flipped_bit_in_cells_parquet_is_refused(tiny_dataset, position, bit):
    """Parquet alone read ~2 % of single-bit flips back as silently different values;
    the SHA-256 stored in dataset.json catches every one."""
    with tempfile.TemporaryDirectory() as tmp:
        ds = _copy(tiny_dataset, Path(tmp))
        raw = bytearray((ds / "cells.parquet").read_bytes())
        raw[int(len(raw) * position)] ^= 1 << bit
        (ds / "cells.parquet").write_bytes(bytes(raw))
        with pytest.raises(DatasetError, match=r"cells\.parquet: (cannot read parquet|content does not match the SHA-256)"):
            open_dataset(ds)


def test_replace_cells_keeps_the_checksum_valid(tiny_dataset):
    from cp2image.data.dataset import replace_cells

    cells = open_dataset(tiny_dataset).cells.assign(Nuclei_AreaShape_Area=1.0)
    replace_cells(tiny_dataset, cells)
    pd.testing.assert_frame_equal(open_dataset(tiny_dataset).cells, cells)


def test_replace_cells_interrupted_between_its_steps_still_opens(tiny_dataset, monkeypatch):
    """A crash after the new table is in place but before dataset.json is final."""
    import cp2image.data.dataset as dataset_module

    calls = []
    real_update = dataset_module.update_meta

    def update_then_crash_on_second_call(path, **entries):
        calls.append(entries)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash before the final metadata update")
        real_update(path, **entries)

    monkeypatch.setattr(dataset_module, "update_meta", update_then_crash_on_second_call)
    new = open_dataset(tiny_dataset).cells.assign(Nuclei_AreaShape_Area=7.0)
    with pytest.raises(KeyboardInterrupt):
        dataset_module.replace_cells(tiny_dataset, new)
    pd.testing.assert_frame_equal(open_dataset(tiny_dataset).cells, new)

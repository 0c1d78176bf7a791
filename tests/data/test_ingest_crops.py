"""`cp2image ingest crops`: raw 16-bit single-cell crops (.npz or .npy folder) → dataset.

Synthetic archives written by the tests pin the conversion rules; the real BBBC021
crops (`real_cells_npz`, skipped when ../shared is absent) are used on a 64-cell
subset to check the whole path including feature measurement.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cp2image.cli import main
from cp2image.data import open_dataset
from cp2image.data.ingest import (
    CropIngestConfig,
    IngestError,
    assign_plate_splits,
    assign_splits,
    channel_permutation,
    combine_sources,
    folder_source,
    ingest_crops,
    npz_source,
    parse_channel_order,
)
from cp2image.data.ingest.crop_sources import SOURCE_COLUMN
from cp2image.features import FAILED_COLUMN, feature_names

N, S = 6, 20
REAL_CHANNEL_ORDER = ("DNA", "Actin", "Tubulin")  # how both shared crop archives store channels (their READMEs)


def _metadata() -> dict[str, np.ndarray]:
    return {
        "crop_file": np.array([f"c{i}.npy" for i in range(N)]),
        "plate": np.array(["P1", "P1", "P2", "P2", "P3", "P3"]),
        "well": np.array(["B02", "B02", "B02", "B03", "B02", "B02"]),
        "site": np.array(["s1", "s2", "s1", "s1", "s4", "s4"]),
        "compound": np.array(["DMSO", "DMSO", "DMSO", "cyclohexamide", "DMSO", "DMSO"]),
        "concentration": np.array([0.0, 0.0, 0.0, 15.0, 0.0, 0.0]),
        "moa": np.array(["DMSO", "DMSO", "DMSO", "Protein synthesis", "DMSO", "DMSO"]),
        "replicate": np.array(["1", "1", "2", "2", "3", "3"]),
    }


def _raw_crops() -> np.ndarray:
    """(N, S, S, 3) uint16 with channel c of crop i peaking at 1000 * (i + 1) * (c + 1) at its centre."""
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 500, size=(N, S, S, 3), dtype=np.uint16)
    for i in range(N):
        for c in range(3):
            crops[i, S // 2, S // 2, c] = 1000 * (i + 1) * (c + 1)
    return crops


@pytest.fixture
def npz_path(tmp_path: Path) -> Path:
    path = tmp_path / "crops.npz"
    np.savez_compressed(path, images=_raw_crops(), **_metadata())
    return path


def _no_measure(**kwargs) -> CropIngestConfig:
    return CropIngestConfig(measure=False, **kwargs)


def test_npz_crops_become_channel_first_uint8_divided_by_their_own_maximum(npz_path, tmp_path):
    ingest_crops(npz_source(npz_path), tmp_path / "ds", config=_no_measure())
    ds = open_dataset(tmp_path / "ds")
    raw = _raw_crops().transpose(0, 3, 1, 2).astype(float)  # (N, 3, S, S)
    expected = np.floor(raw / raw.max(axis=(2, 3), keepdims=True) * 255 + 0.5).astype(np.uint8)
    assert ds.images.shape == (N, 3, S, S) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images, expected)
    assert (ds.images[:, :, S // 2, S // 2] == 255).all()


def test_metadata_is_mapped_to_metadata_columns(npz_path, tmp_path):
    ingest_crops(npz_source(npz_path), tmp_path / "ds", config=_no_measure())
    cells = open_dataset(tmp_path / "ds").cells
    meta = _metadata()
    assert cells["Metadata_Plate"].tolist() == meta["plate"].tolist()
    assert cells["Metadata_Well"].tolist() == meta["well"].tolist()
    assert cells["Metadata_Site"].tolist() == [1.0, 2.0, 1.0, 1.0, 4.0, 4.0]
    assert cells["Metadata_Compound"].tolist() == meta["compound"].tolist()
    assert cells["Metadata_Concentration"].tolist() == meta["concentration"].tolist()
    assert cells["Metadata_MoA"].tolist() == meta["moa"].tolist()
    assert cells["Metadata_Replicate"].tolist() == [1, 1, 2, 2, 3, 3]  # integers, like the simulator
    assert cells["Metadata_ReplicateID"].tolist() == ["P1/B02", "P1/B02", "P2/B02", "P2/B03", "P3/B02", "P3/B02"]
    assert cells["Metadata_Crop_File"].tolist() == meta["crop_file"].tolist()


def test_split_by_plate_never_splits_a_plate(npz_path, tmp_path):
    ingest_crops(npz_source(npz_path), tmp_path / "ds", config=_no_measure(split_by="plate"))
    cells = open_dataset(tmp_path / "ds").cells
    assert (cells.groupby("Metadata_Plate")["Metadata_Split"].nunique() == 1).all()
    # P2 is the only plate with cycloheximide: it is never held out
    assert set(cells.loc[cells["Metadata_Plate"] == "P2", "Metadata_Split"]) == {"train"}


# ----------------------------------------------------------------------------- channel order


def test_channel_order_takes_the_inputs_channels_by_name(npz_path, tmp_path):
    # input stores DNA, Actin, Tubulin: its channel 2 is tubulin and must land in slot 1 (CHANNELS order)
    ingest_crops(npz_source(npz_path), tmp_path / "ds", config=_no_measure(channel_order=("DNA", "Actin", "Tubulin")))
    ds = open_dataset(tmp_path / "ds")
    raw = _raw_crops().transpose(0, 3, 1, 2).astype(float)[:, [0, 2, 1]]  # (N, 3, S, S) as DNA, Tubulin, Actin
    expected = np.floor(raw / raw.max(axis=(2, 3), keepdims=True) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(ds.images, expected)
    assert ds.channels == ["DNA", "Tubulin", "Actin"]
    assert ds.meta["provenance"]["channel_order"] == ["DNA", "Actin", "Tubulin"]


def test_default_channel_order_is_cp2images_own_and_recorded(npz_path, tmp_path):
    ingest_crops(npz_source(npz_path), tmp_path / "ds", config=_no_measure())
    assert open_dataset(tmp_path / "ds").meta["provenance"]["channel_order"] == ["DNA", "Tubulin", "Actin"]


@pytest.mark.parametrize("text, expected, permutation", [
    ("DNA,Tubulin,Actin", ("DNA", "Tubulin", "Actin"), [0, 1, 2]),
    ("DNA,Actin,Tubulin", ("DNA", "Actin", "Tubulin"), [0, 2, 1]),
    (" dapi , F-actin, β-tubulin ", ("DNA", "Actin", "Tubulin"), [0, 2, 1]),
    ("Actin,Tubulin,DNA", ("Actin", "Tubulin", "DNA"), [2, 1, 0]),
])
def test_channel_order_names_and_stains_map_to_a_permutation(text, expected, permutation):
    assert parse_channel_order(text) == expected
    assert channel_permutation(expected) == permutation


@pytest.mark.parametrize("text, message", [
    ("DNA,Actn,Tubulin", "unknown channel 'Actn'"),
    ("DNA,Actin,actin", "Actin is named twice"),
    ("DNA,Actin", "must name 3 channels"),
    ("DNA,Actin,Tubulin,DNA", "must name 3 channels"),
    ("DNA,,Tubulin", "must name 3 channels"),
])
def test_wrong_duplicate_or_unknown_channel_names_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        CropIngestConfig(channel_order=text)


def test_cli_channel_order_is_applied_and_a_bad_one_named(npz_path, tmp_path, capsys):
    code = main(["ingest", "crops", "--npz", str(npz_path), "--out", str(tmp_path / "ds"), "--no-progress",
                 "--no-measure", "--channel-order", "DNA,Actin,Tubulin"])
    assert code == 0
    assert open_dataset(tmp_path / "ds").meta["provenance"]["channel_order"] == ["DNA", "Actin", "Tubulin"]
    code = main(["ingest", "crops", "--npz", str(npz_path), "--out", str(tmp_path / "bad"), "--no-progress",
                 "--channel-order", "DNA,Tubulin,Tubulin"])
    assert code != 0
    assert "Tubulin is named twice" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- several inputs


def _second_archive(tmp_path: Path, *, size: int = S) -> Path:
    """Two more crops from plate P9 (one DMSO, one taxol), crop files c0/c1 like the first archive's."""
    rng = np.random.default_rng(7)
    path = tmp_path / "more.npz"
    np.savez(path, images=rng.integers(0, 9000, size=(2, size, size, 3), dtype=np.uint16),
             plate=np.array(["P9", "P9"]), well=np.array(["B02", "C04"]), compound=np.array(["DMSO", "taxol"]),
             concentration=np.array([0.0, 0.3]), crop_file=np.array(["c0.npy", "c1.npy"]))
    return path


def test_several_archives_become_one_dataset_in_order(npz_path, tmp_path):
    more = _second_archive(tmp_path)
    source = combine_sources([npz_source(npz_path), npz_source(more)])
    ingest_crops(source, tmp_path / "both", config=_no_measure(channel_order="DNA,Actin,Tubulin"))
    ingest_crops(npz_source(npz_path), tmp_path / "a", config=_no_measure(channel_order="DNA,Actin,Tubulin"))
    ingest_crops(npz_source(more), tmp_path / "b", config=_no_measure(channel_order="DNA,Actin,Tubulin"))
    both, a, b = (open_dataset(tmp_path / n) for n in ("both", "a", "b"))
    np.testing.assert_array_equal(both.images, np.concatenate([a.images, b.images]))
    assert both.cells[SOURCE_COLUMN].tolist() == ["crops.npz"] * N + ["more.npz"] * 2
    assert both.cells["Metadata_Plate"].tolist() == a.cells["Metadata_Plate"].tolist() + ["P9", "P9"]
    assert both.cells["Metadata_MoA"].isna().tolist() == [False] * N + [True] * 2  # more.npz has no moa array
    inputs = both.meta["provenance"]["inputs"]
    assert [Path(i["path"]).name for i in inputs] == ["crops.npz", "more.npz"]


def test_the_same_crop_in_two_archives_is_refused(npz_path, tmp_path):
    with pytest.raises(IngestError, match=r"crop c0.npy of plate P1 is listed more than once \(in crops.npz, copy.npz\)"):
        combine_sources([npz_source(npz_path), npz_source(_copy(npz_path, tmp_path / "copy.npz"))])


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def test_archives_with_different_crop_sizes_are_refused(npz_path, tmp_path):
    with pytest.raises(IngestError, match="crop sizes differ"):
        combine_sources([npz_source(npz_path), npz_source(_second_archive(tmp_path, size=S + 2))])


def test_cli_takes_several_npz_archives(npz_path, tmp_path, capsys):
    code = main(["ingest", "crops", "--npz", str(npz_path), str(_second_archive(tmp_path)), "--out",
                 str(tmp_path / "ds"), "--no-progress", "--no-measure"])
    assert code == 0
    assert f"wrote {N + 2} cells" in capsys.readouterr().out


# ----------------------------------------------------------------------------- plate splits


def test_plate_split_spreads_same_content_plates_and_keeps_unique_ones_in_train():
    cells = pd.DataFrame({
        "Metadata_Plate": ["A", "B", "C", "D", "D"],
        "Metadata_Compound": ["DMSO", "DMSO", "DMSO", "DMSO", "cyclohexamide"],
        "Metadata_Concentration": [0.0, 0.0, 0.0, 0.0, 5.0],
    })
    splits = assign_splits(cells, by="plate", seed=0)
    assert splits.iloc[3] == splits.iloc[4] == "train"
    assert sorted(splits.iloc[:3]) == ["test", "train", "val"]


def test_moa_table_annotates_and_moa_only_filters(tmp_path):
    meta = _metadata()
    del meta["moa"]
    path = tmp_path / "no_moa.npz"
    np.savez(path, images=_raw_crops(), **meta)
    moa = tmp_path / "moa.csv"
    pd.DataFrame({"compound": ["DMSO"], "concentration": [0.0], "moa": ["DMSO"]}).to_csv(moa, index=False)
    summary = ingest_crops(npz_source(path), tmp_path / "ds", moa_table=moa, config=_no_measure(moa_only=True))
    cells = open_dataset(tmp_path / "ds").cells
    assert len(cells) == 5 and summary.n_skipped_moa == 1
    assert set(cells["Metadata_Compound"]) == {"DMSO"}


def test_subset_is_a_seeded_sample_in_original_order(npz_path, tmp_path):
    ingest_crops(npz_source(npz_path), tmp_path / "a", config=_no_measure(subset=3, seed=5))
    ingest_crops(npz_source(npz_path), tmp_path / "b", config=_no_measure(subset=3, seed=5))
    a, b = open_dataset(tmp_path / "a").cells, open_dataset(tmp_path / "b").cells
    files = a["Metadata_Crop_File"].tolist()
    assert len(files) == 3 and files == sorted(files, key=lambda f: int(f[1:-4]))
    assert files == b["Metadata_Crop_File"].tolist()


def test_folder_of_npy_crops_matches_the_npz(npz_path, tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    raw, meta = _raw_crops(), _metadata()
    for i, name in enumerate(meta["crop_file"]):
        np.save(folder / name, raw[i])
    pd.DataFrame(meta).to_csv(tmp_path / "crops.csv", index=False)
    ingest_crops(folder_source(folder, tmp_path / "crops.csv"), tmp_path / "from_folder", config=_no_measure())
    ingest_crops(npz_source(npz_path), tmp_path / "from_npz", config=_no_measure())
    a, b = open_dataset(tmp_path / "from_folder"), open_dataset(tmp_path / "from_npz")
    np.testing.assert_array_equal(a.images, b.images)
    cols = [c for c in b.cells.columns]
    pd.testing.assert_frame_equal(a.cells[cols], b.cells[cols], check_dtype=False)


def test_measured_features_and_failure_flag_are_added(npz_path, tmp_path):
    summary = ingest_crops(npz_source(npz_path), tmp_path / "ds", config=CropIngestConfig())
    ds = open_dataset(tmp_path / "ds")
    assert ds.feature_names == feature_names()
    assert FAILED_COLUMN in ds.cells.columns
    assert summary.n_features == len(feature_names())
    assert summary.n_segmentation_failed == int(ds.cells[FAILED_COLUMN].sum())


def test_drop_failed_removes_unsegmentable_crops_but_reports_the_rate(tmp_path):
    raw = _raw_crops()
    raw[2] = 0  # an empty crop: nothing to segment
    path = tmp_path / "e.npz"
    np.savez(path, images=raw, **_metadata())
    kept = ingest_crops(npz_source(path), tmp_path / "kept", config=CropIngestConfig())
    dropped = ingest_crops(npz_source(path), tmp_path / "dropped", config=CropIngestConfig(drop_failed=True))
    all_cells = open_dataset(tmp_path / "kept").cells
    flags = all_cells[FAILED_COLUMN].to_numpy()
    unusable = flags | all_cells[feature_names()].isna().any(axis=1).to_numpy()
    assert flags[2] and kept.n_written == N
    cells = open_dataset(tmp_path / "dropped").cells
    assert dropped.n_written == N - int(unusable.sum()) == len(cells)
    assert cells["Metadata_Crop_File"].tolist() == all_cells.loc[~unusable, "Metadata_Crop_File"].tolist()
    assert not cells[FAILED_COLUMN].any() and not cells[feature_names()].isna().any().any()
    assert dropped.n_dropped_failed == int(unusable.sum())
    assert dropped.segmentation_success_rate == kept.segmentation_success_rate == pytest.approx(1 - flags.mean())


def _plates(spec: dict[str, list[tuple[str, str]]]) -> pd.DataFrame:
    """One row per cell from {plate: [(compound, moa), ...]}."""
    rows = [(plate, c, m) for plate, cells in spec.items() for c, m in cells]
    return pd.DataFrame(rows, columns=["Metadata_Plate", "Metadata_Compound", "Metadata_MoA"]).assign(
        Metadata_Concentration=1.0)


def test_held_out_plates_cover_every_moa_that_can_be_spared():
    dmso, taxol, latb, cyclo = ("DMSO", "DMSO"), ("taxol", "MT stab"), ("latB", "Actin"), ("cyclo", "Protein synth")
    cells = _plates({
        "A": [dmso, taxol], "B": [dmso, taxol], "C": [dmso, taxol, latb],
        "D": [dmso, taxol, latb], "E": [dmso, taxol, latb], "F": [dmso, cyclo],
    })
    for seed in range(5):
        split = assign_plate_splits(cells, seed=seed)
        by_plate = split.groupby(cells["Metadata_Plate"]).agg(set)
        assert (by_plate.map(len) == 1).all()  # no plate spans two splits
        by_plate = by_plate.map(lambda s: next(iter(s)))
        assert by_plate["F"] == "train"  # the only cycloheximide plate is never held out
        for name in ("val", "test"):
            assert set(cells.loc[split == name, "Metadata_MoA"]) >= {"DMSO", "MT stab"}, (seed, name)
        # latB is on 3 plates: at most one leaves train (each compound keeps ≥ half its plates)
        assert (by_plate[["C", "D", "E"]] == "train").sum() >= 2
        assert set(cells.loc[split != "train", "Metadata_MoA"]) >= {"Actin"}


def test_plate_split_is_seeded():
    cells = _plates({p: [("DMSO", "DMSO")] * 3 for p in "ABCDEFGHIJ"})
    a, b = assign_plate_splits(cells, seed=3), assign_plate_splits(cells, seed=3)
    pd.testing.assert_series_equal(a, b)
    assert a.value_counts().to_dict() == {"train": 24, "val": 3, "test": 3}  # 10 % of 30 cells = one plate each


# ----------------------------------------------------------------------------- bad input


def _assert_fails_cleanly(source_fn, tmp_path: Path, *patterns: str, config=None) -> None:
    out = tmp_path / "ds"
    with pytest.raises(IngestError) as info:
        ingest_crops(source_fn(), out, config=config or _no_measure())
    for pattern in patterns:
        assert pattern in str(info.value), f"{pattern!r} not in: {info.value}"
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds")]


def test_float_crops_are_rejected_naming_the_array(tmp_path):
    path = tmp_path / "f.npz"
    np.savez(path, images=_raw_crops().astype(np.float32), **_metadata())
    _assert_fails_cleanly(lambda: npz_source(path), tmp_path, "f.npz", "images", "float32")


def test_wrong_shape_is_rejected(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, images=_raw_crops()[..., :2], **_metadata())
    _assert_fails_cleanly(lambda: npz_source(path), tmp_path, "s.npz", "images", f"({N}, {S}, {S}, 2)")


def test_missing_metadata_is_named(tmp_path):
    path = tmp_path / "m.npz"
    meta = _metadata()
    del meta["well"]
    np.savez(path, images=_raw_crops(), **meta)
    _assert_fails_cleanly(lambda: npz_source(path), tmp_path, "m.npz", "well")


def test_metadata_of_wrong_length_is_named(tmp_path):
    path = tmp_path / "l.npz"
    meta = _metadata()
    meta["plate"] = meta["plate"][:4]
    np.savez(path, images=_raw_crops(), **meta)
    _assert_fails_cleanly(lambda: npz_source(path), tmp_path, "l.npz", "plate")


def test_missing_npy_crop_is_named_with_its_column(tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    for i, name in enumerate(_metadata()["crop_file"][:-1]):
        np.save(folder / name, _raw_crops()[i])
    pd.DataFrame(_metadata()).to_csv(tmp_path / "crops.csv", index=False)
    _assert_fails_cleanly(lambda: folder_source(folder, tmp_path / "crops.csv"), tmp_path,
                          "crops.csv", "crop_file", "c5.npy")


def test_npy_crop_of_another_shape_is_named(tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    for i, name in enumerate(_metadata()["crop_file"]):
        np.save(folder / name, _raw_crops()[i] if i != 4 else _raw_crops()[i, :10])
    pd.DataFrame(_metadata()).to_csv(tmp_path / "crops.csv", index=False)
    _assert_fails_cleanly(lambda: folder_source(folder, tmp_path / "crops.csv"), tmp_path,
                          "c4.npy", "crop_file", "(10, 20, 3)", config=_no_measure(batch_size=2))


# ----------------------------------------------------------------------------- real BBBC021 crops


@pytest.fixture(scope="module")
def real_subset(real_cells_npz: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("real") / "ds"
    config = CropIngestConfig(subset=64, seed=0, channel_order=REAL_CHANNEL_ORDER)
    summary = ingest_crops(npz_source(real_cells_npz), out, config=config)
    return summary, open_dataset(out)


@pytest.mark.real_data
def test_real_crops_are_normalised_from_the_raw_16_bit_crops(real_cells_npz, real_subset):
    _, ds = real_subset
    with np.load(real_cells_npz, allow_pickle=False) as archive:
        files = archive["crop_file"]
        plates = archive["plate"]
        where = {(p, f): i for i, (p, f) in enumerate(zip(plates, files))}
        index = [where[(p, f)] for p, f in zip(ds.cells["Metadata_Plate"], ds.cells["Metadata_Crop_File"])]
        raw = archive["images"][index].transpose(0, 3, 1, 2).astype(float)[:, [0, 2, 1]]  # → DNA, Tubulin, Actin
        compounds = archive["compound"][index]
    expected = np.floor(raw / raw.max(axis=(2, 3), keepdims=True) * 255 + 0.5).astype(np.uint8)
    assert ds.images.shape == (64, 3, 68, 68)
    np.testing.assert_array_equal(ds.images, expected)
    assert ds.cells["Metadata_Compound"].tolist() == compounds.tolist()


@pytest.mark.real_data
def test_real_crops_record_their_channel_order(real_subset):
    _, ds = real_subset
    assert ds.meta["provenance"]["channel_order"] == list(REAL_CHANNEL_ORDER)
    assert ds.channels == ["DNA", "Tubulin", "Actin"]


@pytest.mark.real_data
def test_both_real_archives_ingest_into_one_dataset(real_cells_npz, real_moa_cells_npz, tmp_path):
    source = combine_sources([npz_source(real_cells_npz), npz_source(real_moa_cells_npz)])
    assert len(source.metadata) == 4241 + 1276  # the archives share no crop
    assert source.metadata["Metadata_MoA"].nunique() == 13  # 12 MoAs + DMSO
    summary = ingest_crops(source, tmp_path / "ds", config=_no_measure(subset=40, channel_order=REAL_CHANNEL_ORDER))
    cells = open_dataset(tmp_path / "ds").cells
    assert summary.n_written == 40
    assert set(cells[SOURCE_COLUMN]) == {real_cells_npz.name, real_moa_cells_npz.name}
    assert (cells.groupby("Metadata_Plate")["Metadata_Split"].nunique() == 1).all()


@pytest.mark.real_data
def test_real_crops_get_measured_features_and_plate_splits(real_subset):
    summary, ds = real_subset
    assert ds.feature_names == feature_names()
    failed = ds.cells[FAILED_COLUMN].to_numpy()
    assert summary.segmentation_success_rate == pytest.approx(1 - failed.mean())
    assert failed.mean() < 0.2  # real DMSO/cycloheximide nuclei are mostly segmentable
    measured = ds.cells.loc[~failed, "Nuclei_AreaShape_Area"]
    assert measured.notna().all() and (measured > 20).all()
    assert (ds.cells.groupby("Metadata_Plate")["Metadata_Split"].nunique() == 1).all()
    cyclo = ds.cells["Metadata_Compound"] == "cyclohexamide"
    assert set(ds.cells.loc[cyclo, "Metadata_Split"]) <= {"train"}


@pytest.mark.real_data
def test_cli_ingests_real_crops_and_prints_success_rate(real_cells_npz, tmp_path, capsys):
    code = main(["ingest", "crops", "--npz", str(real_cells_npz), "--out", str(tmp_path / "ds"),
                 "--subset", "16", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "wrote 16 cells" in out and "segmentation succeeded on" in out
    assert len(open_dataset(tmp_path / "ds")) == 16


def test_cli_report_counts_cells_per_plate_and_features(npz_path, tmp_path, capsys):
    report = tmp_path / "docs" / "report.md"
    code = main(["ingest", "crops", "--npz", str(npz_path), "--out", str(tmp_path / "ds"), "--no-progress",
                 "--report", str(report)])
    assert code == 0
    text = report.read_text()
    assert "| P2 | cyclohexamide | 15 | Protein synthesis | train | 1 |" in text
    assert "| P1 | DMSO | 0 | DMSO |" in text and "| 2 |" in text
    assert f"{len(feature_names())} feature columns" in text
    assert "segmentation succeeded on" in text


def test_missing_moa_stays_missing_and_moa_only_drops_it(tmp_path):
    meta = _metadata()
    meta["moa"] = np.array(["DMSO", "", "DMSO", "Protein synthesis", "DMSO", ""])
    path = tmp_path / "m.npz"
    np.savez(path, images=_raw_crops(), **meta)
    ingest_crops(npz_source(path), tmp_path / "all", config=_no_measure())
    assert open_dataset(tmp_path / "all").cells["Metadata_MoA"].isna().tolist() == [False, True, False, False, False, True]
    summary = ingest_crops(npz_source(path), tmp_path / "moa", config=_no_measure(moa_only=True))
    assert summary.n_skipped_moa == 2 and summary.n_written == 4


def test_moa_table_fills_gaps_and_wins_on_conflict(tmp_path):
    meta = _metadata()
    meta["moa"] = np.array(["", "DMSO", "DMSO", "Something else", "DMSO", "DMSO"])
    path = tmp_path / "m.npz"
    np.savez(path, images=_raw_crops(), **meta)
    moa = tmp_path / "moa.csv"
    pd.DataFrame({"compound": ["DMSO", "cyclohexamide"], "concentration": [0.0, 15.0],
                  "moa": ["DMSO", "Protein synthesis"]}).to_csv(moa, index=False)
    ingest_crops(npz_source(path), tmp_path / "ds", moa_table=moa, config=_no_measure())
    assert open_dataset(tmp_path / "ds").cells["Metadata_MoA"].tolist() == ["DMSO"] * 3 + ["Protein synthesis"] + ["DMSO"] * 2


def test_empty_plate_is_refused(tmp_path):
    meta = _metadata()
    meta["plate"] = np.array(["P1", "", "P2", "P2", "P3", "P3"])
    path = tmp_path / "p.npz"
    np.savez(path, images=_raw_crops(), **meta)
    _assert_fails_cleanly(lambda: npz_source(path), tmp_path, "p.npz", "Metadata_Plate")


def test_no_profile_normalisation_is_stored_because_nothing_reads_it(npz_path, tmp_path):
    """Plate-wise DMSO statistics are derived data: `ProfileNormaliser().fit(ds.cells)` gives them
    from the cell table whenever they are wanted, and training standardises on its own rows."""
    ingest_crops(npz_source(npz_path), tmp_path / "ds", config=CropIngestConfig())
    assert "normalisation" not in open_dataset(tmp_path / "ds").meta


def test_crops_without_a_cell_are_flagged_and_reported_not_dropped(tmp_path):
    """An empty field stretched to full range by per-crop normalisation looks like noise; it is kept, flagged."""
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:S, :S] - S / 2
    blob = (4000 * np.exp(-(xx ** 2 + yy ** 2) / 20.0)).astype(np.uint16)
    crops = np.repeat(np.repeat(blob[None, :, :, None], N, axis=0), 3, axis=3)
    crops[2] = rng.integers(0, 60, size=(S, S, 3), dtype=np.uint16)  # an empty field: camera noise only
    path = tmp_path / "crops.npz"
    np.savez_compressed(path, images=crops, **_metadata())
    summary = ingest_crops(npz_source(path), tmp_path / "ds", config=_no_measure())
    cells = open_dataset(tmp_path / "ds").cells
    assert len(cells) == N
    assert cells["Metadata_EmptyCrop"].tolist() == [i == 2 for i in range(N)]
    assert summary.n_empty_crops == 1
    assert any("1 crops show no cell" in line for line in summary.lines())

"""`cp2image generate --profiles FILE`: every bad profile file ends with exit code 2, a
message naming the file's problem, and no output written; good files (reordered or
extra columns, one row) give exactly one image per row."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_helpers import PROPERTY

from cp2image.cli import main
from cp2image.models.testing import tiny_model

FEATURES = ["Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin", "Cytoplasm_AreaShape_Area"]
MEAN, SCALE = [300.0, 0.2, 900.0], [50.0, 0.05, 120.0]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gen-model") / "model"
    tiny_model(FEATURES, seed=1, feature_mean=MEAN, feature_scale=SCALE).save_pretrained(folder)
    return folder


def _generate(model_dir: Path, data: bytes, tmp: Path, *extra: str) -> tuple[int, Path]:
    profiles = tmp / "profiles.csv"
    profiles.write_bytes(data)
    out = tmp / "out"
    code = main(["generate", "--profiles", str(profiles), "--out", str(out), "--model", str(model_dir),
                 "--format", "npy", *extra])
    return code, out


def _good(n: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(MEAN, SCALE, size=(n, 3)), columns=FEATURES)


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", r"profiles\.csv.*(empty|no columns)"),
        ("Nuclei_AreaShape_Area,é\n1,2\n".encode("latin-1"), r"profiles\.csv.*(UTF-8|utf-8)"),
        (",".join(FEATURES).encode() + b"\n", r"profiles\.csv.*no rows"),
        (_good().drop(columns=[FEATURES[1]]).to_csv(index=False).encode(), r"lack 1 of the model's 3 features"),
        ((",".join(FEATURES + [FEATURES[0]]) + "\n1,2,3,4\n").encode(), r"duplicated column.*Nuclei_AreaShape_Area"),
        (_good().astype(object).assign(**{FEATURES[2]: ["x", 1.0, 2.0]}).to_csv(index=False).encode(),
         r"1 row\(s\) have missing/non-numeric features"),
        (_good().assign(**{FEATURES[0]: [np.inf, 1.0, 2.0]}).to_csv(index=False).encode(),
         r"1 row\(s\) have missing/non-numeric features"),
        (_good().assign(**{FEATURES[0]: [np.nan, 1.0, 2.0]}).to_csv(index=False).encode(),
         r"1 row\(s\) have missing/non-numeric features"),
    ],
    ids=["empty", "latin-1", "zero-rows", "missing-column", "duplicated-column", "text", "inf", "nan"],
)
def test_bad_profile_files_exit_2_with_a_named_problem_and_no_output(model_dir, tmp_path, capsys, data, problem):
    code, out = _generate(model_dir, data, tmp_path)
    err = capsys.readouterr().err
    assert code == 2, err
    assert __import__("re").search(problem, err), err
    assert not out.exists() or not any(out.iterdir())


@settings(PROPERTY, max_examples=8)  # each example runs the whole command
@given(n=st.integers(1, 5), seed=st.integers(0, 100), extra=st.booleans())
def test_reordered_and_extra_columns_give_one_image_per_row(model_dir, tmp_path_factory, n, seed, extra):
    frame = _good(n, seed)
    if extra:
        frame["Metadata_Well"] = "B02"
        frame["Image_Something"] = 1
    cols = list(frame.columns)
    np.random.default_rng(seed).shuffle(cols)
    tmp = tmp_path_factory.mktemp("gen")
    code, out = _generate(model_dir, frame[cols].to_csv(index=False).encode(), tmp)
    assert code == 0
    images = np.load(out / "images.npy")
    assert images.shape == (n, 3, 68, 68) and images.dtype == np.uint8
    expected = tiny_model(FEATURES, seed=1, feature_mean=MEAN, feature_scale=SCALE).generate(frame[FEATURES])
    np.testing.assert_array_equal(images, expected)


def test_drop_incomplete_skips_bad_rows_and_says_so(model_dir, tmp_path, capsys):
    frame = _good(4).assign(**{FEATURES[1]: [0.2, np.nan, 0.25, 0.3]})
    code, out = _generate(model_dir, frame.to_csv(index=False).encode(), tmp_path, "--drop-incomplete")
    assert code == 0
    assert np.load(out / "images.npy").shape[0] == 3
    assert pd.read_csv(out / "index.csv")["generated"].tolist() == [True, False, True, True]
    assert "skipped 1 incomplete row" in capsys.readouterr().err

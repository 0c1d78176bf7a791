"""Bad profiles in, clear errors out: property tests over profile-CSV ingestion and
`model.generate`.

The upload path is exactly the app's (pages/generate_profiles.py): the raw header is
checked for repeated names, then `cp2image.analysis.profiles.read_profiles_csv`. Every
mutation of a valid upload (missing / duplicated / reordered / extra columns, NaN, ±inf,
overflowing values, text in numeric columns, empty files, non-UTF-8, 0 or 1 rows) either
raises ValueError naming the problem, or is reported by name / row / column with the
documented repair (skip the bad rows); good rows come back exactly, in model order.
Generation never returns NaN and clips extreme inputs to ±clip_sigma with a warning.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_helpers import PROPERTY

from cp2image.analysis.profiles import ProfileCheck, read_profiles_csv
from cp2image.analysis.profiles import UploadLimits, duplicated_header_names
from cp2image.models.testing import tiny_model

FEATURES = ["Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin", "Cytoplasm_AreaShape_Area"]
MEAN = [300.0, 0.2, 900.0]
SCALE = [50.0, 0.05, 120.0]


@pytest.fixture(scope="module")
def model():
    return tiny_model(FEATURES, seed=3, feature_mean=MEAN, feature_scale=SCALE)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def profile_frames(draw, min_rows: int = 1, max_rows: int = 6) -> pd.DataFrame:
    n = draw(st.integers(min_rows, max_rows))
    data = {f: draw(st.lists(finite, min_size=n, max_size=n)) for f in FEATURES}
    frame = pd.DataFrame(data)
    frame.insert(0, "Metadata_Compound", [f"cpd{i}" for i in range(n)])
    return frame


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def _shuffle_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    cols = list(frame.columns)
    np.random.default_rng(seed).shuffle(cols)
    return frame[cols]


def ingest(data: bytes, *, limits: UploadLimits = UploadLimits()) -> ProfileCheck:
    """What the upload page does with the bytes (pages/generate_profiles.py: check_upload)."""
    duplicated = duplicated_header_names(data)
    if duplicated:
        raise ValueError(f"column name(s) appear more than once: {', '.join(duplicated)}")
    return read_profiles_csv(data, FEATURES, max_bytes=limits.max_bytes, max_rows=limits.max_rows)


# ----------------------------------------------------------------------------- good uploads


@PROPERTY
@given(frame=profile_frames(), seed=st.integers(0, 1000), n_extra=st.integers(0, 3))
def test_reordered_columns_and_extras_are_matched_by_name(frame, seed, n_extra):
    upload = frame.copy()
    for i in range(n_extra):
        upload[f"Extra_Column_{i}"] = "anything"
    upload = _shuffle_columns(upload, seed)
    check = ingest(_csv(upload))
    assert check.ok and check.messages() == []
    usable = check.usable()
    assert list(usable.columns) == FEATURES + ["Metadata_Compound"]
    np.testing.assert_allclose(usable[FEATURES].to_numpy(), frame[FEATURES].to_numpy(), rtol=1e-12)
    assert sorted(c for c in check.extra if c.startswith("Extra")) == [f"Extra_Column_{i}" for i in range(n_extra)]


def test_a_single_row_upload_works(model):
    frame = pd.DataFrame([MEAN], columns=FEATURES)
    images = model.generate(ingest(_csv(frame)).usable())
    assert images.shape == (1, 3, 68, 68) and images.dtype == np.uint8


def test_utf8_bom_from_excel_is_accepted():
    frame = pd.DataFrame([MEAN], columns=FEATURES)
    assert ingest(b"\xef\xbb\xbf" + _csv(frame)).ok


# ----------------------------------------------------------------------------- bad uploads


@PROPERTY
@given(frame=profile_frames(), drop=st.sets(st.sampled_from(FEATURES), min_size=1))
def test_missing_feature_columns_are_listed(frame, drop):
    check = ingest(_csv(frame.drop(columns=sorted(drop))))
    assert check.missing == [f for f in FEATURES if f in drop]
    assert check.messages()[0].startswith(f"{len(drop)} of the model's 3 features are missing")
    with pytest.raises(ValueError, match=r"features are missing"):
        check.usable()


@PROPERTY
@given(frame=profile_frames(), dup=st.sampled_from(FEATURES))
def test_duplicated_columns_are_named(frame, dup):
    text = frame.to_csv(index=False)
    header, rest = text.split("\n", 1)
    column = frame[dup].astype(str).tolist()
    rows = [line + "," + v for line, v in zip(rest.strip("\n").split("\n"), column)]
    data = "\n".join([header + "," + dup] + rows) + "\n"
    with pytest.raises(ValueError, match=rf"more than once: {dup}"):
        ingest(data.encode())


def _one_bad_cell(frame: pd.DataFrame, col: str, row: int, bad: str) -> tuple[ProfileCheck, int]:
    row = row % len(frame)
    upload = frame.astype({col: object})
    upload.loc[row, col] = bad
    return ingest(_csv(upload)), row


@PROPERTY
@given(frame=profile_frames(), col=st.sampled_from(FEATURES), row=st.integers(0, 5),
       bad=st.sampled_from(["", "NaN", "nan", "NA", "null", "inf", "-inf", "Infinity", "1e400", "-1e999",
                            "abc", "1,5", "12 µm", "--", "#REF!", "TRUE"]))
def test_nan_inf_overflow_and_text_cells_are_reported_by_row_and_column_and_skippable(frame, col, row, bad):
    check, row = _one_bad_cell(frame, col, row, bad)
    line = row + 2  # spreadsheet numbering: the header is row 1, the first cell row 2
    assert not check.ok and check.bad_rows == [line]
    assert check.bad_cells["column"].tolist() == [col] and check.bad_cells["row"].tolist() == [line]
    assert "rows have NaN/inf or non-numeric feature values" in check.messages()[-1]
    assert f"rows {line}; spreadsheet row numbers" in check.messages()[-1]
    if len(frame) > 1:
        usable = check.usable()  # the page's "skip those rows"
        assert line not in usable.index and len(usable) == len(frame) - 1
        assert np.isfinite(usable[FEATURES].to_numpy()).all()
    else:
        with pytest.raises(ValueError, match=r"no row has finite values"):
            check.usable()


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", r"empty"),
        (b"\n\n", r"empty"),
        (",".join(FEATURES).encode() + b"\n", r"no rows"),
        ("Nuclei_AreaShape_Area,é\n1,2\n".encode("latin-1"), r"could not read the profiles as CSV"),
        (b"\xff\xfe" + "a,b\n1,2\n".encode("utf-16-le"), r"could not read the profiles as CSV"),
    ],
    ids=["empty", "blank-lines", "zero-rows", "latin-1", "utf-16"],
)
def test_files_that_are_not_profile_csvs_are_refused(data, problem):
    with pytest.raises(ValueError, match=problem):
        ingest(data)


def test_upload_size_and_row_limits_are_enforced():
    frame = pd.DataFrame(np.tile(MEAN, (11, 1)), columns=FEATURES)
    with pytest.raises(ValueError, match=r"more than 10 rows"):
        ingest(_csv(frame), limits=UploadLimits(max_rows=10))
    with pytest.raises(ValueError, match=r"limit"):
        ingest(_csv(frame), limits=UploadLimits(max_bytes=100))


@PROPERTY
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_give_a_clear_error_or_only_finite_usable_rows(data):
    try:
        check = ingest(data)
    except ValueError:
        return
    if check.missing:
        assert check.messages()
        return
    try:
        usable = check.usable()
    except ValueError:
        return
    assert np.isfinite(usable[FEATURES].to_numpy()).all()


# ----------------------------------------------------------------------------- generate


@PROPERTY
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=3, max_size=3))
def test_generate_never_returns_nan_and_refuses_non_finite_input(model, values):
    array = np.array([values])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not np.isfinite(array).all():
            with pytest.raises(ValueError, match=r"NaN/inf value"):
                model.generate(array)
            return
        images = model.generate(array)
    assert images.dtype == np.uint8 and images.shape == (1, 3, 68, 68)


@pytest.mark.parametrize("sigma", [20.0, -20.0, 1e6])
def test_extreme_inputs_are_clipped_to_the_documented_range_with_a_warning(model, sigma):
    limit = model.config.clip_sigma
    extreme = np.array(MEAN) + sigma * np.array(SCALE)
    at_limit = np.array(MEAN) + np.sign(sigma) * limit * np.array(SCALE)
    with pytest.warns(UserWarning, match=rf"beyond ±{limit:g} training standard deviations"):
        images = model.generate(extreme[None])
    np.testing.assert_array_equal(images, model.generate(at_limit[None]))


@pytest.mark.parametrize(
    "array, problem",
    [
        (np.zeros((2, 3, 1)), r"must be 2-D"),
        (np.array([["a", "b", "c"]]), r"must be numeric"),
    ],
    ids=["3-d", "strings"],  # a wrong width: tests/models/test_cp2image.py
)
def test_arrays_of_the_wrong_shape_or_type_are_refused(model, array, problem):
    with pytest.raises(ValueError, match=problem):
        model.generate(array)


def test_frames_with_text_values_are_refused(model):
    frame = pd.DataFrame([MEAN], columns=FEATURES).astype(object)
    frame.iloc[0, 1] = "high"
    with pytest.raises(ValueError, match=r"must be numeric"):
        model.generate(frame)


def test_zero_rows_give_zero_images(model):
    out = model.generate(pd.DataFrame(columns=FEATURES, dtype=float))
    assert out.shape == (0, 3, 68, 68) and out.dtype == np.uint8


def test_uploaded_table_flows_into_generation(model):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(MEAN, SCALE, size=(5, 3)), columns=FEATURES)
    usable = ingest(_csv(frame)).usable()
    np.testing.assert_array_equal(model.generate(usable), model.generate(frame))

"""`cp2image generate` end to end with a tiny saved model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cp2image.cli import main
from cp2image.models import CP2Image
from cp2image.models.testing import tiny_model

NAMES = ["Nuclei_AreaShape_Area", "Cells_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin"]


@pytest.fixture
def model_dir(tmp_path):
    tiny_model(NAMES, seed=7).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_generate_writes_npy_pngs_and_index(model_dir, tmp_path, capsys):
    frame = pd.DataFrame(np.random.default_rng(0).standard_normal((3, 3)), columns=NAMES)
    frame["Metadata_Well"] = ["A01", "A02", "B01"]
    frame.to_csv(tmp_path / "p.csv", index=False)
    code = main(["generate", "--model", str(model_dir), "--profiles", str(tmp_path / "p.csv"),
                 "--out", str(tmp_path / "out")])
    assert code == 0
    images = np.load(tmp_path / "out" / "images.npy")
    expected = CP2Image.from_pretrained(model_dir).generate(frame)
    np.testing.assert_array_equal(images, expected)
    index = pd.read_csv(tmp_path / "out" / "index.csv")
    assert index["row"].tolist() == [2, 3, 4]  # spreadsheet rows: the header is row 1, as on the app's upload page
    assert index["png"].tolist() == ["row_00002.png", "row_00003.png", "row_00004.png"]
    assert index["Metadata_Well"].tolist() == ["A01", "A02", "B01"]
    assert Image.open(tmp_path / "out" / "row_00003.png").size == (68, 68)
    assert "generated 3 image(s)" in capsys.readouterr().out


def test_generate_reports_missing_features(model_dir, tmp_path, capsys):
    pd.DataFrame({"Nuclei_AreaShape_Area": [1.0]}).to_csv(tmp_path / "p.csv", index=False)
    code = main(["generate", "--model", str(model_dir), "--profiles", str(tmp_path / "p.csv"),
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "lack 2 of the model's 3 features" in capsys.readouterr().err


def test_generate_can_skip_incomplete_rows(model_dir, tmp_path):
    frame = pd.DataFrame([[1.0, 2.0, 3.0], [np.nan, 1.0, 1.0], [0.5, 0.5, 0.5]], columns=NAMES)
    frame.to_csv(tmp_path / "p.csv", index=False)
    args = ["generate", "--model", str(model_dir), "--profiles", str(tmp_path / "p.csv"), "--format", "npy"]
    assert main([*args, "--out", str(tmp_path / "strict")]) == 2
    assert main([*args, "--out", str(tmp_path / "lenient"), "--drop-incomplete"]) == 0
    assert np.load(tmp_path / "lenient" / "images.npy").shape == (2, 3, 68, 68)
    index = pd.read_csv(tmp_path / "lenient" / "index.csv")
    assert index["generated"].tolist() == [True, False, True]

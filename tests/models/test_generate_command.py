"""`cp2image generate` end to end with a tiny saved model.

Bad profile files and --drop-incomplete: tests/reliability/test_generate_cli_inputs.py.
"""
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

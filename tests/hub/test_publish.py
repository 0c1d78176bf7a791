"""`cp2image hub push` / `push-dataset`: card checks, the dry-run listing, and what a real push sends."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from huggingface_hub import DatasetCard

from cp2image.cli import main
from cp2image.data.dataset import write_dataset
from cp2image.models.testing import tiny_model
from cp2image.publish.cards import CardError, check_card, check_card_file, dataset_card

NAMES = ["Nuclei_AreaShape_Area", "Cells_AreaShape_Area"]
CARD = "---\nlibrary_name: cp2image\nlicense: mit\ntags: [cell-painting]\n---\n# A model\n"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "model"
    tiny_model(NAMES, seed=0).save_pretrained(folder)
    (folder / "README.md").write_text(CARD)
    (folder / "evaluation").mkdir()
    (folder / "evaluation" / "metrics.json").write_text("{}")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "junk").write_text("x")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"x")
    return folder


@pytest.fixture
def dataset_dir(tmp_path) -> Path:
    cells = pd.DataFrame({"Metadata_Plate": ["P1"] * 4, "Metadata_Well": ["A01", "A01", "B02", "B02"],
                          "Metadata_Compound": ["DMSO"] * 4, "Metadata_Concentration": [0.0] * 4,
                          "Metadata_MoA": ["DMSO"] * 4, "Metadata_Split": ["train"] * 4,
                          NAMES[0]: [1.0, 2, 3, 4], NAMES[1]: [5.0, 6, 7, 8]})
    images = np.zeros((4, 3, 68, 68), np.uint8)
    return write_dataset(tmp_path / "screen", images, cells, {"features": NAMES, "pixel_size_um": 0.65,
                                                              "provenance": {"source": "test", "simulated": True}})


def test_dry_run_lists_every_file_and_the_total_and_sends_nothing(model_dir, capsys, monkeypatch):
    monkeypatch.setattr("huggingface_hub.HfApi.upload_folder", lambda *a, **k: pytest.fail("dry run uploaded"))
    assert main(["hub", "push", str(model_dir), "my-lab/cp2image-test", "--dry-run"]) == 0
    out = capsys.readouterr().out
    sizes = {p.relative_to(model_dir).as_posix(): p.stat().st_size
             for p in model_dir.rglob("*") if p.is_file() and ".cache" not in p.parts and "__pycache__" not in p.parts}
    assert sorted(sizes) == ["README.md", "config.json", "evaluation/metrics.json", "model.safetensors"]
    for name, size in sizes.items():
        assert f"{size:>14,}  {name}" in out
    assert f"{sum(sizes.values()):>14,}  bytes in 4 files → model repo my-lab/cp2image-test" in out
    assert "junk" not in out and ".pyc" not in out and "dry run: nothing was uploaded" in out


def test_a_push_creates_the_repo_and_uploads_the_folder(model_dir, monkeypatch, capsys):
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs))
            return type("Info", (), {"commit_url": "https://huggingface.co/my-lab/m/commit/1"})()

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    assert main(["hub", "push", str(model_dir), "my-lab/m", "--private"]) == 0
    (_, _, create), (_, _, upload) = calls
    assert create == {"repo_type": "model", "private": True, "exist_ok": True}
    assert upload["folder_path"] == model_dir and ".*" in upload["ignore_patterns"]
    assert "uploaded: https://huggingface.co/my-lab/m/commit/1" in capsys.readouterr().out


@pytest.mark.parametrize("card, problem", [
    ("# no front matter\n", "no YAML front matter"),
    ("---\n- a\n---\n", "front matter is not valid card metadata"),
    ("---\nlibrary_name: cp2image\n---\n", "license must be a Hub license id"),
    ("---\nlicense: MIT License\nlibrary_name: cp2image\n---\n", "license must be a Hub license id"),
    ("---\nlicense: mit\n---\n", "library_name is missing"),
    ("---\nlicense: mit\nlibrary_name: x\ntags: [1, {a: 2}]\n---\n", "tags must be a list of strings"),
])
def test_a_bad_model_card_is_refused_before_anything_is_sent(model_dir, card, problem, capsys):
    (model_dir / "README.md").write_text(card)
    assert main(["hub", "push", str(model_dir), "my-lab/m", "--dry-run"]) == 2
    assert problem in capsys.readouterr().err


def test_pushing_a_folder_that_is_not_a_model_names_the_missing_file(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    assert main(["hub", "push", str(tmp_path / "x"), "my-lab/m", "--dry-run"]) == 2
    assert "no config.json; is this a cp2image model folder?" in capsys.readouterr().err


def test_a_repo_id_needs_an_owner(model_dir, capsys):
    assert main(["hub", "push", str(model_dir), "cp2image-sim", "--dry-run"]) == 2
    assert "give the owner too, as in 'my-lab/cp2image-sim'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["cp2image-sim", "cp2image-bbbc021-real"])
def test_the_bundled_model_cards_are_valid_for_the_hub(name):
    card = check_card_file(REPO_ROOT / "assets" / "models" / name / "README.md", repo_type="model")
    assert card.data.library_name == "cp2image"


def test_push_dataset_writes_a_dataset_card_from_dataset_json(dataset_dir, capsys):
    assert main(["hub", "push-dataset", str(dataset_dir), "my-lab/screen", "--dry-run", "--license", "cc0-1.0"]) == 0
    out = capsys.readouterr().out
    assert "README.md (dataset card, generated from dataset.json)" in out
    assert "cells.parquet" in out and "dataset.json" in out and "images.npy" in out
    card = DatasetCard(dataset_card(dataset_dir, license_="cc0-1.0", repo_id="my-lab/screen"))
    assert card.data.license == "cc0-1.0" and card.data.size_categories == ["n<1K"]
    assert "simulated" in card.data.tags and "4 cells" in card.text and "0.65 µm" in card.text
    check_card(str(card), repo_type="dataset")


def test_push_dataset_uploads_the_generated_card_after_the_folder(dataset_dir, monkeypatch):
    sent = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            sent.append(("create", kwargs["repo_type"]))

        def upload_folder(self, **kwargs):
            sent.append(("folder", kwargs["repo_type"]))

        def upload_file(self, **kwargs):
            sent.append((kwargs["path_in_repo"], kwargs["path_or_fileobj"][:4]))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    assert main(["hub", "push-dataset", str(dataset_dir), "my-lab/screen"]) == 0
    assert sent == [("create", "dataset"), ("folder", "dataset"), ("README.md", b"---\n")]


def test_card_error_is_a_value_error():
    with pytest.raises(CardError):
        check_card("nothing")
    assert issubclass(CardError, ValueError)

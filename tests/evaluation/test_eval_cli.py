"""`cp2image evaluate` and `cp2image table1` from the command line, on tiny models and data."""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cp2image.cli import main
from cp2image.evaluation.inception import ENV_VAR
from cp2image.evaluation.table1 import Table1Config, format_table, run_table1

FAST = ["--max-train-cells", "100", "--kid-subsets", "5", "--kid-subset-size", "20", "--no-progress"]


@dataclass
class EvaluateRun:
    """A `cp2image evaluate` command line run in this process, and what it printed."""

    out: Path
    code: int
    stdout: str
    stderr: str


def _evaluate(args: list[str], out: Path) -> EvaluateRun:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["evaluate", *args, "--out", str(out)])
    return EvaluateRun(out, code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="module")
def tiny_cp2image_dir(tiny_dataset, tmp_path_factory) -> Path:
    testing = pytest.importorskip("cp2image.models.testing")
    features = [f for f in tiny_dataset.feature_names if f in tiny_dataset.cells.columns]
    values = tiny_dataset.cells[features].to_numpy(dtype=float)
    mean = np.nanmean(values, axis=0)
    scale = np.nanstd(values, axis=0)
    scale[~(scale > 0)] = 1.0
    model = testing.tiny_model(features, seed=0, feature_mean=mean, feature_scale=scale)
    folder = tmp_path_factory.mktemp("cli") / "model"
    model.save_pretrained(folder)
    return folder


# Each evaluation costs seconds (measuring, an encoder, the distances), so the tests below read two
# runs instead of making four: the first as a user runs it, the second reusing the first's encoder.
@pytest.fixture(scope="module")
def first_run(tiny_dataset, tiny_cp2image_dir, tmp_path_factory) -> EvaluateRun:
    """`cp2image evaluate` with its report, and no Inception weights anywhere."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(ENV_VAR, raising=False)
        return _evaluate(["--model", str(tiny_cp2image_dir), "--data", str(tiny_dataset.path), *FAST],
                         tmp_path_factory.mktemp("first") / "eval")


@pytest.fixture(scope="module")
def second_run(first_run, tiny_dataset, tiny_cp2image_dir, tmp_path_factory) -> tuple[EvaluateRun, Path]:
    """The same evaluation given the first run's saved encoder and an Inception file that does not
    exist, without a report. Returns the run and the missing file."""
    missing = tmp_path_factory.mktemp("nowhere") / "inception.pt"
    run = _evaluate(["--model", str(tiny_cp2image_dir), "--data", str(tiny_dataset.path), *FAST, "--no-report",
                     "--encoder", str(first_run.out / "encoder"), "--inception", str(missing)],
                    tmp_path_factory.mktemp("second") / "eval")
    return run, missing


def test_evaluate_command_writes_the_report_and_explains_missing_fid(first_run, tiny_cp2image_dir) -> None:
    assert first_run.code == 0, first_run.stderr
    out = first_run.out
    assert "FID/KID not computed" in first_run.stderr and ENV_VAR in first_run.stderr
    headline = json.loads(first_run.stdout[: first_run.stdout.rindex("}") + 1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == {"type": "CP2Image", "mode": "conditional", "paired": True,
                                "source": f"local: {tiny_cp2image_dir.name}"}  # a label, never a server path
    assert headline["fid_inception"] is None
    assert (out / "encoder" / "encoder.safetensors").is_file()  # saved for reuse with --encoder
    assert (out / "report.md").is_file() and (out / "report.html").is_file()


def test_evaluate_command_reuses_a_saved_encoder(first_run, second_run) -> None:
    second, _ = second_run
    assert first_run.code == 0 and second.code == 0, second.stderr
    a = json.loads((first_run.out / "metrics.json").read_text())["encoder_space"]
    b = json.loads((second.out / "metrics.json").read_text())["encoder_space"]
    assert b["encoder"] == f"loaded from {first_run.out / 'encoder'}"
    assert a["frechet"] == pytest.approx(b["frechet"], rel=1e-9)
    assert not (second.out / "encoder").exists()


def test_a_missing_inception_file_is_named_and_evaluation_still_completes(second_run) -> None:
    run, missing = second_run
    assert run.code == 0, run.stderr
    inc = json.loads((run.out / "metrics.json").read_text())["inception"]
    assert inc["available"] is False and f"{missing} does not exist" in inc["reason"]


def test_a_training_run_folder_of_a_baseline_is_evaluated_as_reconstruction(tiny_dataset, tmp_path) -> None:
    trainer_mod = pytest.importorskip("cp2image.training.trainer")
    from cp2image.training.config import TrainConfig

    config = TrainConfig(model="vae", steps=1, batch_size=8, base_filters=4, latent_dim=4, progress=False,
                         num_threads=1)
    trainer_mod.Trainer(config, tiny_dataset.path, tmp_path / "run").run()
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(tmp_path / "run"), "--data", str(tiny_dataset.path), "--out", str(out),
                 *FAST, "--no-report"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["type"] == "VAE" and metrics["model"]["mode"] == "reconstruction"


def test_table_shows_mean_and_sample_sd_per_model_and_marks_partial_cells() -> None:
    results = pd.DataFrame({
        "model": ["vae", "vae", "vae", "cp2image"],
        "seed": [0, 1, 2, 0],
        "frechet_encoder": [1.0, 2.0, 3.0, 0.5],
    })
    table = format_table(results, models=["vae", "cp2image"], seeds_planned=3)
    row = next(line for line in table.splitlines() if line.startswith("| Fréchet distance, domain encoder"))
    assert row == "| Fréchet distance, domain encoder† | 2.000 ± 1.000 | 0.500 (1 seed) |"
    assert "| FID (Inception-v3) | n/a | n/a |" in table
    assert "351.96 ± 5.3" in table and "68.42 ± 1.9" in table


def test_table1_rejects_an_unknown_model_kind(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"unknown model kind\(s\) \['gan'\]"):
        run_table1(tmp_path, tmp_path / "out", config=Table1Config(models=["gan"]))


@pytest.mark.slow  # trains 2 tiny models and evaluates them: ~1 min on a busy 2-core machine
def test_table1_trains_evaluates_and_resumes(tiny_dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    config = Table1Config(models=["vae", "lsgan"], seeds=[0], steps=1, batch_size=8, base_filters=4, latent_dim=4,
                          eval_cells=30, classifier_train_cells=60, kid_subsets=5, kid_subset_size=10)
    out = tmp_path / "t1"
    results = run_table1(tiny_dataset.path, out, config=config)
    assert list(results["model"]) == ["vae", "lsgan"]
    assert (out / "runs" / "vae-seed0" / "evaluation.json").is_file()
    table = (out / "table1.md").read_text()
    assert "Runs finished: 2 of 2" in table
    stamp = (out / "runs" / "lsgan-seed0" / "evaluation.json").stat().st_mtime_ns
    again = run_table1(tiny_dataset.path, out, config=config)  # resumes: nothing retrained or re-evaluated
    assert (out / "runs" / "lsgan-seed0" / "evaluation.json").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(results, again)

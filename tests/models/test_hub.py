"""`ModelRef` and `load_model(spec)`: bundled, local, Hub id with offline fallback, invalid ids.

The Hub cache itself (revision pins, missing files, tampered blobs, fast failures) is
tested in tests/hub/test_hub_cache.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from cp2image.models.hub import ModelKind, ModelRef, load_model
from cp2image.models.testing import tiny_model

NAMES = ["Nuclei_AreaShape_Area", "Cells_AreaShape_Area"]


@pytest.fixture
def assets(tmp_path, monkeypatch):
    """A private assets folder holding a tiny 'bundled' model."""
    root = tmp_path / "assets"
    tiny_model(NAMES, seed=1).save_pretrained(root / "models" / "cp2image-sim")
    tiny_model(NAMES, seed=2).save_pretrained(root / "models" / "cp2image-bbbc021-real")
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(root))
    monkeypatch.delenv("CP2IMAGE_MODEL", raising=False)
    return root


@pytest.mark.parametrize("text, ref", [
    (None, ModelRef(ModelKind.BUNDLED, "cp2image-sim")),
    ("bundled", ModelRef(ModelKind.BUNDLED, "cp2image-sim")),
    ("bundled:cp2image-bbbc021-real", ModelRef(ModelKind.BUNDLED, "cp2image-bbbc021-real")),
    ("org/name", ModelRef(ModelKind.HUB, "org/name")),
    ("org/name@v1.2", ModelRef(ModelKind.HUB, "org/name", "v1.2")),
])
def test_text_parses_into_one_typed_reference_and_back(text, ref):
    assert ModelRef.parse(text) == ref
    assert ModelRef.parse(ref.spec) == ref


def test_labels_name_the_model_never_a_server_path(tmp_path):
    assert ModelRef.bundled().label == "bundled: cp2image-sim"
    assert ModelRef.hub("org/name", "v1").label == "hub: org/name@v1"
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    local = ModelRef.parse(str(tmp_path / "runs" / "mine"))
    assert local.kind is ModelKind.LOCAL and local.label == "local: mine"


@pytest.mark.parametrize("kind, name, revision, message", [
    (ModelKind.HUB, "no-org", None, "use 'org/name'"),
    (ModelKind.HUB, "org/name", "../x", "not a valid Hub revision"),
    (ModelKind.LOCAL, "/tmp/x", "v1", "only Hub models have a revision"),
])
def test_an_impossible_reference_cannot_be_built(kind, name, revision, message):
    with pytest.raises(ValueError, match=message):
        ModelRef(kind, name, revision)


def test_default_is_the_bundled_model(assets):
    loaded = load_model()
    assert loaded.source == "bundled: cp2image-sim" and loaded.notice is None
    assert loaded.folder == assets / "models" / "cp2image-sim"
    assert loaded.model.feature_names == NAMES and not loaded.model.training


def test_named_bundle_and_env_var(assets, monkeypatch):
    real = load_model("bundled:cp2image-bbbc021-real")
    assert real.source == "bundled: cp2image-bbbc021-real"
    monkeypatch.setenv("CP2IMAGE_MODEL", "bundled:cp2image-bbbc021-real")
    assert load_model().ref == real.ref


def test_a_bundled_model_s_bare_name_means_that_model_as_in_the_sidebar(assets, monkeypatch):
    monkeypatch.setenv("CP2IMAGE_MODEL", "cp2image-bbbc021-real")
    assert load_model().ref == ModelRef.bundled("cp2image-bbbc021-real")
    with pytest.raises(ValueError, match="use 'org/name'"):  # a bare name that is not bundled is still refused
        ModelRef.parse("cp2image-unknown")


def test_local_folder_and_training_run_folder(assets, tmp_path):
    tiny_model(NAMES, seed=3).save_pretrained(tmp_path / "run" / "model")
    x = np.zeros((1, 2))
    for spec in (tmp_path / "run" / "model", tmp_path / "run"):
        loaded = load_model(str(spec))
        assert loaded.ref.kind is ModelKind.LOCAL and loaded.folder == tmp_path / "run" / "model"
        np.testing.assert_array_equal(loaded.model.generate(x), tiny_model(NAMES, seed=3).generate(x))


def test_unreachable_hub_falls_back_to_bundle_with_notice(assets):
    # conftest sets HF_HUB_OFFLINE=1, so the Hub cannot be reached
    loaded = load_model("some-org/cp2image-weights")
    assert loaded.source == "bundled: cp2image-sim" and loaded.requested == ModelRef.hub("some-org/cp2image-weights")
    assert loaded.notice.startswith("'some-org/cp2image-weights' is not in the local Hugging Face cache")
    assert loaded.notice.endswith("Using the bundled cp2image-sim model instead.")


def test_invalid_hub_id_is_rejected_before_any_request(assets):
    with pytest.raises(ValueError, match="neither an existing folder nor a valid Hugging Face repo id"):
        load_model("not a repo id!")


@pytest.mark.parametrize("typo", ["./runs/cp2image", "/no/such/model", "runs/cp2image/model", "~/weights"])
def test_a_missing_folder_is_reported_not_looked_up_on_the_hub(assets, typo):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        load_model(typo)


def test_a_baseline_is_refused_where_a_cp2image_model_is_needed(assets, tmp_path):
    from cp2image.models.vae import VAE, VAEConfig

    VAE(VAEConfig(base_filters=4, latent_dim=8, provenance={"model_kind": "vae"})).save_pretrained(tmp_path / "vae")
    with pytest.raises(ValueError, match=r"local: vae cannot be used: it is a 'vae' model"):
        load_model(str(tmp_path / "vae"))


def test_missing_bundle_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(tmp_path / "empty"))
    monkeypatch.delenv("CP2IMAGE_MODEL", raising=False)
    with pytest.raises(FileNotFoundError, match="set CP2IMAGE_MODEL") as err:
        load_model()
    assert str(tmp_path) not in str(err.value)


def test_the_app_gets_the_default_model_and_the_reason_when_a_choice_cannot_load(assets, tmp_path):
    from cp2image.models.hub import load_or_default

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"")
    loaded = load_or_default(str(tmp_path / "broken"))
    assert loaded.ref == ModelRef.bundled() and loaded.requested.label == "local: broken"
    assert loaded.problem.startswith("Could not load model 'local: broken': local: broken cannot be used: config.json")
    assert loaded.problem.endswith("Showing the default model instead.") and str(tmp_path) not in loaded.problem
    assert load_or_default(None).problem is None


def test_the_app_reports_a_broken_default_model(tmp_path, monkeypatch):
    from cp2image.models.hub import load_or_default

    monkeypatch.setenv("CP2IMAGE_ASSETS", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="bundled model 'cp2image-sim' not found"):
        load_or_default(None)


def _modules_loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh interpreter has imported after running `code`."""
    import subprocess
    import sys

    probe = f"{code}\nimport sys\nprint(','.join(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [m for m in done.stdout.strip().split(",") if m]


def test_naming_and_resolving_a_model_imports_no_torch():
    """The app parses and resolves the sidebar's model before Home is drawn; torch comes with the weights."""
    code = ("from cp2image.models.hub import ModelRef, resolve, model_kind\n"
            "model_kind(resolve(ModelRef.parse(None)).folder)")
    assert _modules_loaded_after(code, ("torch",)) == []
    assert _modules_loaded_after("from cp2image.models import CP2Image", ("torch",)) == ["torch"]


def test_reading_a_saved_evaluation_imports_neither_scikit_learn_nor_torch():
    """The model card and correlation report read files; the evaluation package loads its parts on use."""
    assert _modules_loaded_after("import cp2image.evaluation.files", ("sklearn", "torch")) == []
    assert _modules_loaded_after("from cp2image.evaluation import moa_fidelity", ("sklearn",)) == ["sklearn"]


def test_the_files_hub_resolves_are_the_files_the_models_save():
    """hub.py names them without importing the model code (torch); they must stay the mixin's names."""
    from cp2image.models import hub, hub_io

    assert (hub.CONFIG_FILE, hub.WEIGHTS_FILE) == (hub_io.CONFIG_FILE, hub_io.WEIGHTS_FILE)

"""A Hub model loads through huggingface_hub's own cache (offline), and each way it can fail
says so in one plain sentence that names the model, never a server path."""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
from hub_cache import add_snapshot, model_files, repo_folder

from cp2image.evaluation.loading import load_for_evaluation
from cp2image.models.hub import ModelKind, ModelRef, ModelUnavailable, load_model, resolve
from cp2image.models.testing import tiny_model

NAMES = ["Nuclei_AreaShape_Area", "Cells_AreaShape_Area"]
REPO = "some-lab/cp2image-sim"
COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
X = np.array([[0.5, -1.0]])


@pytest.fixture
def assets(tmp_path, monkeypatch):
    """A bundled model to fall back on (seed 9), distinct from every Hub model below."""
    root = tmp_path / "assets"
    tiny_model(NAMES, seed=9).save_pretrained(root / "models" / "cp2image-sim")
    monkeypatch.setenv("CP2IMAGE_ASSETS", str(root))
    monkeypatch.delenv("CP2IMAGE_MODEL", raising=False)
    return root


def saved(tmp_path, seed: int, *, extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    folder = tmp_path / f"saved-{seed}"
    tiny_model(NAMES, seed=seed).save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# card\n")
    for name, data in (extra or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return model_files(folder)


def same_images(loaded_model, seed: int) -> bool:
    return np.array_equal(loaded_model.generate(X), tiny_model(NAMES, seed=seed).generate(X))


def test_a_cached_hub_model_loads_with_every_file_beside_the_weights(hf_home, assets, tmp_path):
    files = saved(tmp_path, 1, extra={"feature_coupling.safetensors": b"x", "evaluation/metrics.json": b"{}"})
    add_snapshot(hf_home, REPO, files, commit=COMMIT_A)
    loaded = load_model(REPO)
    assert loaded.ref == ModelRef(ModelKind.HUB, REPO) and loaded.notice is None and loaded.commit == COMMIT_A
    assert loaded.source == f"hub: {REPO} (aaaaaaa)"
    assert loaded.folder == repo_folder(hf_home, REPO) / "snapshots" / COMMIT_A
    assert (loaded.folder / "feature_coupling.safetensors").read_bytes() == b"x"
    assert (loaded.folder / "evaluation" / "metrics.json").is_file()
    assert same_images(loaded.model, 1) and not loaded.model.training


def test_the_environment_variable_names_a_hub_model(hf_home, assets, tmp_path, monkeypatch):
    add_snapshot(hf_home, REPO, saved(tmp_path, 1), commit=COMMIT_A)
    monkeypatch.setenv("CP2IMAGE_MODEL", REPO)
    assert same_images(load_model().model, 1)


def test_a_revision_pin_loads_that_commit_not_main(hf_home, assets, tmp_path):
    add_snapshot(hf_home, REPO, saved(tmp_path, 1), commit=COMMIT_A, refs=("v1",))
    add_snapshot(hf_home, REPO, saved(tmp_path, 2), commit=COMMIT_B, refs=("main",))
    assert same_images(load_model(REPO).model, 2)
    by_tag = load_model(f"{REPO}@v1")
    assert by_tag.ref.revision == "v1" and by_tag.commit == COMMIT_A and same_images(by_tag.model, 1)
    assert same_images(load_model(f"{REPO}@{COMMIT_A}").model, 1)


def test_an_unknown_revision_offline_falls_back_and_says_which(hf_home, assets, tmp_path):
    add_snapshot(hf_home, REPO, saved(tmp_path, 1), commit=COMMIT_A)
    loaded = load_model(f"{REPO}@v9")
    assert same_images(loaded.model, 9) and loaded.requested == ModelRef.hub(REPO, "v9")
    assert loaded.notice == (f"'{REPO}' at revision 'v9' is not in the local Hugging Face cache and the Hub cannot "
                             "be reached (offline mode is on). Using the bundled cp2image-sim model instead.")


def test_a_snapshot_missing_the_weights_names_the_missing_file(hf_home, assets, tmp_path):
    files = saved(tmp_path, 1)
    del files["model.safetensors"]
    add_snapshot(hf_home, REPO, files, commit=COMMIT_A)
    with pytest.raises(ModelUnavailable, match=r"^The Hub model hub: some-lab/cp2image-sim \(aaaaaaa\) has no "
                                               r"model.safetensors; is it a cp2image model\?$"):
        resolve(REPO)
    loaded = load_model(REPO)
    assert "has no model.safetensors" in loaded.notice and same_images(loaded.model, 9)


def test_a_tampered_weights_blob_is_refused_not_replaced(hf_home, assets, tmp_path):
    snapshot = add_snapshot(hf_home, REPO, saved(tmp_path, 1), commit=COMMIT_A)
    blob = (snapshot / "model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0xFF  # one byte of the last tensor: still a valid safetensors file
    blob.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"hub: some-lab/cp2image-sim \(aaaaaaa\) cannot be used: "
                                         r"model.safetensors: the tensor data do not match") as err:
        load_model(REPO)
    assert str(hf_home) not in str(err.value) and "snapshots" not in str(err.value)


def test_a_model_not_in_the_cache_offline_falls_back_with_one_plain_sentence(hf_home, assets):
    loaded = load_model("some-lab/never-downloaded")
    assert same_images(loaded.model, 9)
    assert loaded.notice == ("'some-lab/never-downloaded' is not in the local Hugging Face cache and the Hub cannot "
                             "be reached (offline mode is on). Using the bundled cp2image-sim model instead.")
    with pytest.raises(ModelUnavailable):
        load_model("some-lab/never-downloaded", fallback=False)


def test_evaluation_loads_hub_models_through_the_same_chain(hf_home, assets, tmp_path):
    add_snapshot(hf_home, REPO, saved(tmp_path, 1), commit=COMMIT_A)
    loaded = load_for_evaluation(REPO)
    assert loaded.kind == "cp2image" and loaded.source == f"hub: {REPO} (aaaaaaa)" and same_images(loaded.model, 1)


class _NoSuchRepo(BaseHTTPRequestHandler):
    """Answers like the Hub does for a repo that does not exist (or is private); counts requests."""

    requests: list[str] = []

    def _answer(self) -> None:
        _NoSuchRepo.requests.append(f"{self.command} {self.path}")
        self.send_response(401)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("X-Error-Message", "Repository not found")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b'{"error":"Repository not found"}')

    do_GET = do_HEAD = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_hub(monkeypatch, hf_home):
    from huggingface_hub import constants

    _NoSuchRepo.requests = []
    server = HTTPServer(("127.0.0.1", 0), _NoSuchRepo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    yield
    server.shutdown()
    server.server_close()


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Every time.sleep the Hub client asks for (its retry back-off), without sleeping."""
    asked: list[float] = []
    monkeypatch.setattr(time, "sleep", asked.append)
    return asked


# Speed is shown by mechanism, not by a timed assertion: one request and no back-off sleeps
# (the old hf_hub_download path made 6 requests with 1+2+4+8+8 s of back-off: 23.2 s measured;
# docs/hosting.md has the timings).
def test_a_mistyped_hub_id_fails_at_the_first_answer_with_a_plain_sentence(fake_hub, assets, sleeps):
    loaded = load_model("some-lab/cp2imgae-sim")
    asked_for_repo = [r for r in _NoSuchRepo.requests if "cp2imgae-sim" in r]
    assert asked_for_repo == ["GET /api/models/some-lab/cp2imgae-sim/revision/main"] and sleeps == []
    assert loaded.notice == ("There is no public model 'some-lab/cp2imgae-sim' on the Hugging Face Hub; check the "
                             "spelling. Using the bundled cp2image-sim model instead.")


def test_an_unreachable_hub_fails_without_retrying(assets, hf_home, monkeypatch, sleeps):
    from huggingface_hub import constants

    with socket.socket() as sock:  # a port nobody listens on: connection refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    loaded = load_model("some-lab/cp2image-sim")
    assert sleeps == []
    assert loaded.notice.startswith("'some-lab/cp2image-sim' is not in the local Hugging Face cache and the Hub "
                                    "cannot be reached (no connection).")

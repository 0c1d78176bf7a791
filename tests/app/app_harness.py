"""Helpers for driving the app with `streamlit.testing.v1.AppTest`.

`DownloadRecorder` keeps the media-file manager AppTest creates for each run, so a
test can execute a download button's (deferred) callable exactly as the server does
when a user clicks it, and get the bytes the user would receive.
"""
from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
HOME = REPO_ROOT / "app" / "Home.py"
PAGES = ["feature_perturbation", "pca_explorer", "moa_interpolation", "correlation_report",
         "generate_profiles", "model_card"]


class DownloadRecorder(MediaFileManager):
    """A MediaFileManager that remembers the latest instance (one is made per AppTest run)."""

    latest: "DownloadRecorder | None" = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        DownloadRecorder.latest = self


def start_app(*, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(HOME), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_page(at: AppTest, name: str) -> AppTest:
    at.switch_page(f"../pages/{name}.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def elements(at: AppTest, kind: str) -> list:
    """Every element of one type (e.g. 'image', 'plotly_chart') anywhere in the page."""
    found: list = []

    def walk(node: Any) -> None:
        if getattr(node, "type", None) == kind:
            found.append(node)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def image_captions(at: AppTest) -> list[str]:
    """Captions of every picture shown with st.image, in page order."""
    return [img.caption for element in elements(at, "image") for img in element.proto.imgs]


def download(at: AppTest, key: str) -> bytes:
    """The bytes a user gets from the download button with this key (runs deferred callables)."""
    manager = DownloadRecorder.latest
    assert manager is not None, "install the DownloadRecorder fixture first"
    buttons = [b for b in at.get("download_button") if b.key == key]
    assert buttons, f"no download button with key {key!r}; keys: {[b.key for b in at.get('download_button')]}"
    proto = buttons[0].proto
    url = manager.execute_deferred(proto.deferred_file_id) if proto.deferred_file_id else proto.url
    assert url, f"download button {key!r} has neither data nor a deferred callable"
    return manager._storage.get_file(url.rsplit("/", 1)[-1]).content


def download_keys(at: AppTest) -> list[str]:
    return [b.key for b in at.get("download_button")]


# -- format checks: each returns something a test can assert on --------------------------------
def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG (bad magic bytes)"
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def svg_root_tag(data: bytes) -> str:
    root = ET.fromstring(data)
    return root.tag


def pdf_pages(data: bytes) -> int:
    assert data.startswith(b"%PDF-"), "not a PDF (bad magic bytes)"
    assert b"%%EOF" in data[-64:], "PDF is truncated (no %%EOF trailer)"
    return data.count(b"/Type /Page\n") + data.count(b"/Type /Page>>") + data.count(b"/Type /Page ")


def csv_frame(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data))


def zip_names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return archive.namelist()


def plotly_spec(at: AppTest, index: int = 0) -> dict:
    """The JSON figure of the index-th Plotly chart on the page."""
    import json

    return json.loads(elements(at, "plotly_chart")[index].proto.spec)


def trace_values(value: Any) -> list:
    """A trace array from Plotly JSON: plain list, or plotly's typed array {'dtype', 'bdata'}."""
    import base64

    import numpy as np

    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).tolist()
    return list(value)


# -- a real server, for the browser test and the screenshots ----------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def streamlit_command(port: int) -> list[str]:
    """`streamlit run app/Home.py` on 127.0.0.1:`port`, headless, no usage statistics."""
    return [sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]


def app_env(assets: Path | None = None, model: str | None = None) -> dict[str, str]:
    """The server's environment: offline Hub; CP2IMAGE_ASSETS / CP2IMAGE_MODEL only when given."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("CP2IMAGE_MODEL", None)
    if model:
        env["CP2IMAGE_MODEL"] = model
    if assets is not None:
        env["CP2IMAGE_ASSETS"] = str(assets)
    return env


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 90.0, log_path: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text()[-2000:] if log_path is not None and log_path.exists() else ""
            raise RuntimeError(f"streamlit exited early with code {process.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not become healthy at {url} within {timeout:.0f} s")


def stop_server(process: subprocess.Popen) -> None:
    """Terminate, then kill if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def run_streamlit(folder: Path, env: dict[str, str], *, log_path: Path,
                  command_prefix: Sequence[str] = ()) -> Iterator[str]:
    """The app in `folder` on a free loopback port; yields its URL once healthy, always stops it after.

    `command_prefix` runs the server through another command (e.g. `setpriv` to user nobody).
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen([*command_prefix, *streamlit_command(port)], cwd=folder, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            _wait_healthy(url, process, log_path=log_path)
            yield url
        finally:
            stop_server(process)


def serve_app(assets: Path | None, *, log_path: Path, model: str | None = None) -> contextlib.AbstractContextManager[str]:
    """`streamlit run app/Home.py` on a free loopback port, offline; yields its URL, stops it after.

    `assets=None` serves the bundled assets; otherwise CP2IMAGE_ASSETS points at `assets`.
    `model` is the server's CP2IMAGE_MODEL (default: unset, the bundled weights).
    """
    return run_streamlit(REPO_ROOT, app_env(assets, model), log_path=log_path)


# Page coordinates of the middle point of the red line, from Plotly's own axis mapping.
LINE_POINT_JS = """
() => {
  const isLine = t => (t.name || '').startsWith('DMSO →');
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g._fullData && g._fullData.some(isLine));
  if (!gd) return null;
  const trace = gd._fullData.find(isLine);  // decoded arrays (gd.data may hold base64 typed arrays)
  const k = Math.floor(trace.x.length / 2);
  const fl = gd._fullLayout, box = gd.getBoundingClientRect();
  return {x: box.left + fl._size.l + fl.xaxis.d2p(trace.x[k]), y: box.top + fl._size.t + fl.yaxis.d2p(trace.y[k]),
          t: trace.customdata[k]};
}
"""



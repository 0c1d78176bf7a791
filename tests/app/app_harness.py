"""Helpers for driving the app with `streamlit.testing.v1.AppTest`.

`DownloadRecorder` keeps the media-file manager AppTest creates for each run, so a
test can execute a download button's (deferred) callable exactly as the server does
when a user clicks it, and get the bytes the user would receive.
"""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

REPO_ROOT = Path(__file__).resolve().parents[2]
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

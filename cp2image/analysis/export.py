"""Export a `Panel` to PNG (150 or 300 dpi), SVG, PDF and CSV — as bytes or atomic files — and
pack generated images for download (PNG per crop, a zip with the raw array and profiles).

Panels are rendered by matplotlib's own backends (Agg, SVG, PDF), so export needs no
browser and works offline and in the Docker image. Vector outputs carry no creation
date and a fixed SVG id salt, so exporting the same panel twice gives identical bytes.
matplotlib is imported only when a panel is rendered.

Image bundles: the PNGs are the channel composite (DNA blue, tubulin red, actin green,
see `cp2image.channels`); the raw 3-channel uint8 array is included as `images.npy`
(no pickle) so that nothing is lost for downstream analysis.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.analysis.panels import Panel
from cp2image.analysis.render import composite
from cp2image.data.files import give_ordinary_permissions

FORMATS = ("png", "svg", "pdf", "csv")
_RC = {"svg.hashsalt": "cp2image", "svg.fonttype": "path", "pdf.fonttype": 42}


def _render(panel: Panel, fmt: str, **kwargs) -> bytes:
    if not isinstance(panel, Panel):
        raise ValueError(f"expected a Panel; got {type(panel).__name__}")
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        panel.figure.savefig(buf, format=fmt, **kwargs)
    return buf.getvalue()


def to_png(panel: Panel, dpi: int = 150) -> bytes:
    """PNG bytes at `dpi` (150 for screens, 300 for print)."""
    if dpi <= 0:
        raise ValueError(f"dpi must be positive; got {dpi}")
    return _render(panel, "png", dpi=dpi, metadata={"Software": None})


def to_svg(panel: Panel) -> bytes:
    """SVG bytes (text as paths; images embedded)."""
    return _render(panel, "svg", metadata={"Date": None})


def to_pdf(panel: Panel) -> bytes:
    """PDF bytes (TrueType fonts embedded)."""
    return _render(panel, "pdf", metadata={"CreationDate": None, "ModDate": None})


def to_csv(panel: Panel) -> bytes:
    """UTF-8 CSV of the panel's numbers (no index column)."""
    return panel.data.to_csv(index=False).encode("utf-8")


def to_bytes(panel: Panel, fmt: str, *, dpi: int = 150) -> bytes:
    """Bytes in one of FORMATS."""
    fmt = fmt.lower().lstrip(".")
    if fmt == "png":
        return to_png(panel, dpi=dpi)
    if fmt == "svg":
        return to_svg(panel)
    if fmt == "pdf":
        return to_pdf(panel)
    if fmt == "csv":
        return to_csv(panel)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {FORMATS}")


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes to `path` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        give_ordinary_permissions(tmp)  # mkstemp makes 0600; a saved figure is an ordinary file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(panel: Panel, path: str | os.PathLike, *, fmt: str | None = None, dpi: int = 150) -> Path:
    """Save a panel atomically; the format comes from `fmt` or the file suffix."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if not fmt:
        raise ValueError(f"cannot tell the format of {path}; give fmt= or a suffix from {FORMATS}")
    return write_atomic(path, to_bytes(panel, fmt, dpi=dpi))


# -- image bundles ---------------------------------------------------------------------
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def png_bytes(rgb: np.ndarray, *, compress_level: int = 6) -> bytes:
    """(H, W, 3) uint8 → PNG file bytes (lossless at every `compress_level`, 0–9; lower is faster)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def safe_name(text: str, *, fallback: str = "cell") -> str:
    """A file-name-safe version of a label ('latrunculin B 3 µM' → 'latrunculin_B_3_M')."""
    cleaned = _SAFE.sub("_", str(text)).strip("._")
    return cleaned[:60] or fallback


def images_zip(
    images: np.ndarray,
    table: pd.DataFrame,
    *,
    names: Sequence[str] | None = None,
    readme: str | None = None,
) -> bytes:
    """A zip with `images/<name>.png` (composites), `images.npy` (raw channels) and `profiles.csv`."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, 3, H, W); got {images.dtype} {images.shape}")
    if len(table) != len(images):
        raise ValueError(f"{len(images)} images but {len(table)} table rows")
    if names is None:
        names = [f"cell_{i:05d}" for i in range(len(images))]
    rgb = composite(images)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        seen: set[str] = set()
        for i, name in enumerate(names):
            stem = safe_name(name, fallback=f"cell_{i:05d}")
            if stem in seen:
                stem = f"{stem}_{i:05d}"
            seen.add(stem)
            archive.writestr(f"images/{stem}.png", png_bytes(rgb[i]))
        npy = io.BytesIO()
        np.save(npy, images, allow_pickle=False)
        archive.writestr("images.npy", npy.getvalue())
        archive.writestr("profiles.csv", table.to_csv(index=False))
        if readme:
            archive.writestr("README.txt", readme)
    return buffer.getvalue()

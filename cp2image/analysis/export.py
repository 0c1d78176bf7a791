"""Export a `Panel` to PNG (150 or 300 dpi), SVG, PDF and CSV — as bytes or atomic files.

Everything is rendered by matplotlib's own backends (Agg, SVG, PDF), so export needs no
browser and works offline and in the Docker image. Vector outputs carry no creation
date and a fixed SVG id salt, so exporting the same panel twice gives identical bytes.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import matplotlib

from cp2image.analysis.panels import Panel

FORMATS = ("png", "svg", "pdf", "csv")
_RC = {"svg.hashsalt": "cp2image", "svg.fonttype": "path", "pdf.fonttype": 42}


def _render(panel: Panel, fmt: str, **kwargs) -> bytes:
    if not isinstance(panel, Panel):
        raise ValueError(f"expected a Panel; got {type(panel).__name__}")
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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved figure is an ordinary file
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

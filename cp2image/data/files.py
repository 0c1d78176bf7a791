"""Atomic file steps shared by every dataset writer: temp dirs, commit by rename, JSON, trimming.

Why a module of its own: `write_dataset`, `DatasetWriter` and the cell-table swap all
rely on the same rule (work in a hidden folder, rename into place when complete), and
this is the one place that implements it.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (`os.umask` sets while it reads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_ordinary_permissions(path: str | os.PathLike) -> None:
    """Mode 0666 minus the umask, as `open()` would give.

    `tempfile.mkstemp` and safetensors (0.8 writes through a private temp file) create files 0600, so weights
    saved on a shared server, or into a container image built as another user, could not be read by anyone else.
    """
    os.chmod(path, 0o666 & ~current_umask())


def fresh_temp_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes 0700; a finished dataset should be readable like any folder
    return tmp


def shrink_npy(path: Path, rows: int) -> None:
    """Cut an .npy file to its first `rows` rows in place (header rewrite + truncate).

    The header is padded to a multiple of 64 bytes, so a smaller leading dimension
    almost always fits the same header length; when it does not, fall back to a copy.
    """
    array = np.load(path, mmap_mode="r")
    offset, shape, dtype = array.offset, array.shape, array.dtype
    del array
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                 "shape": (rows, *shape[1:])}
    )
    new_size = offset + rows * int(np.prod(shape[1:])) * dtype.itemsize
    if len(header.getvalue()) == offset:
        with open(path, "r+b") as fh:
            fh.write(header.getvalue())
            fh.truncate(new_size)
        return
    full = np.load(path, mmap_mode="r")
    trimmed = path.with_name(f".{path.name}.trim.npy")
    out = np.lib.format.open_memmap(trimmed, mode="w+", dtype=dtype, shape=(rows, *shape[1:]))
    for start in range(0, rows, 4096):
        stop = min(start + 4096, rows)
        out[start:stop] = full[start:stop]
    out.flush()
    del out, full
    os.replace(trimmed, path)


def commit_dir(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move a finished temp dir into place; the old one, if replaced, goes last."""
    if target.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, trash)
        os.replace(tmp, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, target)


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps(meta, indent=2, sort_keys=False, default=json_default) + "\n")


def json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)

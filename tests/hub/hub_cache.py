"""Build a Hugging Face Hub cache by hand, in the documented on-disk layout, for offline tests.

<HF_HOME>/hub/models--<org>--<name>/
    blobs/<sha256 of the content>          the files' bytes, stored once
    snapshots/<commit>/<file> -> ../../blobs/<sha256>   one folder per commit
    refs/<branch>                           the commit a branch or tag points at
(https://huggingface.co/docs/hub/local-cache). Nothing here imports cp2image's loader,
so the loader is tested against the layout, not against itself.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def repo_folder(hf_home: Path, repo_id: str) -> Path:
    return hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))


def add_snapshot(hf_home: Path, repo_id: str, files: dict[str, bytes], *, commit: str,
                 refs: tuple[str, ...] = ("main",)) -> Path:
    """Store `files` as commit `commit` (40 hex digits) and point `refs` at it; returns the snapshot folder."""
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
    repo = repo_folder(hf_home, repo_id)
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot = repo / "snapshots" / commit
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)  # no trailing newline, as huggingface_hub writes it
    return snapshot


def model_files(folder: Path) -> dict[str, bytes]:
    """Every file of a saved model folder, by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

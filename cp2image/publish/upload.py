"""What goes up to the Hub, and the upload itself (`HfApi.upload_folder`).

The dry run and the real upload share one listing (`plan_upload`), so what `--dry-run`
prints is what would be sent: every file of the folder except caches, temp files and
hidden folders.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

IGNORE_PATTERNS = [".*", "**/.*", "__pycache__/*", "**/__pycache__/*", "*.pyc", "*.tmp", "*.tmp.*"]


@dataclass(frozen=True)
class UploadPlan:
    folder: Path
    repo_id: str
    repo_type: str  # "model" | "dataset" | "space"
    files: tuple[tuple[str, int], ...]  # (path in repo, bytes)

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)

    def describe(self) -> str:
        """The dry-run listing: one line per file, then the total."""
        lines = [f"{size:>14,}  {name}" for name, size in self.files]
        lines.append(f"{self.total_bytes:>14,}  bytes in {len(self.files)} files → {self.repo_type} repo {self.repo_id}")
        return "\n".join(lines)


def _ignored(relative: str) -> bool:
    return any(fnmatch.fnmatch(relative, pattern) for pattern in IGNORE_PATTERNS) or any(
        part.startswith(".") or part == "__pycache__" for part in relative.split("/")[:-1])


def plan_upload(folder: str | Path, repo_id: str, *, repo_type: str = "model") -> UploadPlan:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and not _ignored(relative):
            files.append((relative, path.stat().st_size))
    if not files:
        raise ValueError(f"{folder}: nothing to upload")
    return UploadPlan(folder, repo_id, repo_type, tuple(files))


def push(plan: UploadPlan, *, private: bool = False, extra_files: dict[str, str] | None = None,
         commit_message: str | None = None) -> str:
    """Create the repo if needed, upload the plan's folder, then any generated files
    (`extra_files`: path in repo → text, e.g. a dataset card); returns the last commit URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True)
    info = api.upload_folder(repo_id=plan.repo_id, folder_path=plan.folder, repo_type=plan.repo_type,
                             ignore_patterns=IGNORE_PATTERNS,
                             commit_message=commit_message or f"Upload with cp2image ({len(plan.files)} files)")
    for path_in_repo, text in (extra_files or {}).items():
        info = api.upload_file(path_or_fileobj=text.encode("utf-8"), path_in_repo=path_in_repo, repo_id=plan.repo_id,
                               repo_type=plan.repo_type, commit_message=f"Add {path_in_repo} (cp2image)")
    return str(getattr(info, "commit_url", info))

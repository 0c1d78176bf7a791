"""Which datasets a server offers: the bundled screen, `CP2IMAGE_DATA`, and folders under allowed roots.

The app never opens a path typed by a visitor. It offers a fixed list: the bundled
simulated screen, the folder in `CP2IMAGE_DATA` (the server's default when set), and
every cp2image dataset (a folder holding `dataset.json`, at most two levels deep) under
the folders listed in `CP2IMAGE_DATA_ROOTS` (separated by the OS path separator). A
choice is made by its label, which names the dataset, never the server folder.
`feature_mismatch` says, in one message, which features a model needs that a dataset lacks.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cp2image.assets import BUNDLED_DATASET_NAME, bundled_dataset_dir

ENV_DATA = "CP2IMAGE_DATA"  # one dataset folder: the server's default dataset
ENV_DATA_ROOTS = "CP2IMAGE_DATA_ROOTS"  # folders whose datasets the sidebar offers
META_FILE = "dataset.json"
MAX_DEPTH = 2  # root/<dataset> or root/<group>/<dataset>
MAX_LISTED = 200  # a root holding thousands of folders must not stall the sidebar


@dataclass(frozen=True)
class DatasetRef:
    """One dataset the server offers."""

    kind: str  # "bundled" | "env" (CP2IMAGE_DATA) | "root" (found under CP2IMAGE_DATA_ROOTS)
    path: Path  # absolute folder; never shown on a page
    label: str  # what the sidebar and messages show

    @property
    def name(self) -> str:
        return self.path.name


def _is_dataset(folder: Path) -> bool:
    return (folder / META_FILE).is_file()


def allowed_roots() -> list[Path]:
    """The folders listed in CP2IMAGE_DATA_ROOTS that exist."""
    text = os.environ.get(ENV_DATA_ROOTS, "")
    return [Path(p).expanduser().resolve() for p in text.split(os.pathsep) if p.strip() and Path(p).expanduser().is_dir()]


def _found_under(root: Path) -> list[Path]:
    found: list[Path] = []
    frontier = [root]
    for _ in range(MAX_DEPTH):
        next_frontier: list[Path] = []
        for folder in frontier:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            for child in children:
                (found if _is_dataset(child) else next_frontier).append(child)
                if len(found) >= MAX_LISTED:
                    return found
        frontier = next_frontier
    return found


def env_dataset() -> DatasetRef | None:
    """The CP2IMAGE_DATA folder, or None when unset; ValueError when it is not a dataset."""
    text = os.environ.get(ENV_DATA, "").strip()
    if not text:
        return None
    folder = Path(text).expanduser().resolve()
    if not _is_dataset(folder):
        raise ValueError(f"{ENV_DATA} does not point at a cp2image dataset folder (one holding {META_FILE})")
    return DatasetRef("env", folder, f"{folder.name} ({ENV_DATA})")


def dataset_choices() -> list[DatasetRef]:
    """Every dataset the server offers, default first: CP2IMAGE_DATA (if set), the bundled
    screen, then the datasets under the allowed roots (labelled root-name/relative-path)."""
    refs: list[DatasetRef] = []
    try:
        env = env_dataset()
    except ValueError:
        env = None  # reported by `default_dataset`
    if env is not None:
        refs.append(env)
    bundled = bundled_dataset_dir()
    refs.append(DatasetRef("bundled", bundled.resolve(), f"{BUNDLED_DATASET_NAME} (bundled, simulated)"))
    for root in allowed_roots():
        for folder in _found_under(root):
            refs.append(DatasetRef("root", folder.resolve(), f"{root.name}/{folder.relative_to(root).as_posix()}"))
    unique: dict[Path, DatasetRef] = {}
    for ref in refs:
        unique.setdefault(ref.path, ref)
    return list(unique.values())


def default_dataset() -> DatasetRef:
    """CP2IMAGE_DATA when set (ValueError if it is not a dataset), else the bundled screen."""
    return env_dataset() or dataset_choices()[0]


def choose_dataset(label: str | None, choices: Sequence[DatasetRef] | None = None) -> DatasetRef:
    """The offered dataset with this label (None/"" → the default); ValueError for anything else."""
    if not label:
        return default_dataset()
    choices = list(choices if choices is not None else dataset_choices())
    for ref in choices:
        if ref.label == label:
            return ref
    raise ValueError(f"'{label}' is not one of the datasets this server offers ({', '.join(r.label for r in choices)})")


def feature_mismatch(model_features: Iterable[str], dataset_features: Iterable[str], *,
                     dataset_label: str = "the dataset", show: int = 8) -> str | None:
    """None when the dataset has every feature the model reads; else one message naming the missing ones."""
    needed = list(model_features)
    have = set(dataset_features)
    missing = [name for name in needed if name not in have]
    if not missing:
        return None
    listed = ", ".join(missing[:show]) + (f" and {len(missing) - show} more" if len(missing) > show else "")
    return (f"The model reads {len(needed)} CellProfiler features and {dataset_label} lacks {len(missing)} of them: "
            f"{listed}. Choose a model trained on this dataset's features, or measure them with `cp2image features`.")


__all__ = ["DatasetRef", "ENV_DATA", "ENV_DATA_ROOTS", "allowed_roots", "choose_dataset", "dataset_choices",
           "default_dataset", "env_dataset", "feature_mismatch"]

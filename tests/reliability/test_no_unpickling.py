"""Nothing in the project unpickles a file: weights are safetensors, arrays are loaded
with allow_pickle=False, and `torch.load` (if ever used) passes weights_only=True.

The scan reads the syntax tree of every Python file we ship (package, app, pages,
benchmarks), so a new call site cannot slip in unnoticed.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("cp2image", "app", "pages", "benchmarks")

# (module-ish prefix, function) pairs that unpickle whatever file they are given.
UNPICKLERS = {
    ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
    ("cPickle", "load"), ("dill", "load"), ("dill", "loads"),
    ("cloudpickle", "load"), ("cloudpickle", "loads"),
    ("joblib", "load"), ("pd", "read_pickle"), ("pandas", "read_pickle"),
    ("shelve", "open"), ("marshal", "load"), ("marshal", "loads"),
    ("jit", "load"),
}

# Reviewed exceptions: file → why it is acceptable.
ALLOWED = {
    # TorchScript archives are read by torch's C++ unpickler, which rebuilds only
    # TorchScript types (no arbitrary Python globals); the file is the FID Inception
    # network that the user points the evaluation CLI at, never an upload to the app.
    ("cp2image/evaluation/inception.py", "torch.jit.load"),
    # A task result that our own dask worker pickled in memory a moment earlier
    # (`_packed_call`, d84468d: dask sizes bytes for free, a DataFrame column by column).
    # No file is read, and the same bytes would otherwise reach the client through
    # dask's own pickle-based transport; with --scheduler the cluster is the user's own.
    ("cp2image/distributed/tasks.py", "pickle.loads"),
}


def _python_files() -> list[Path]:
    files: list[Path] = []
    for folder in SCANNED:
        files.extend(p for p in (REPO_ROOT / folder).rglob("*.py") if ".venv" not in p.parts)
    return sorted(files)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_calls(source: str) -> list[str]:
    """Describe each call in `source` that could unpickle a file."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in {"pickle", "dill", "cloudpickle", "joblib"}:
            if any(a.name in {"load", "loads", "Unpickler"} for a in node.names):
                found.append(f"line {node.lineno}: from {node.module} import load*")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        parts = name.split(".")
        if len(parts) >= 2 and (parts[-2], parts[-1]) in UNPICKLERS:
            found.append(f"line {node.lineno}: {name}()")
        elif name.endswith("torch.load"):
            if not _is_true(_keyword(node, "weights_only")):
                found.append(f"line {node.lineno}: {name}() without weights_only=True")
        elif parts[-1] == "load" and parts[0] in {"np", "numpy"} and _is_true(_keyword(node, "allow_pickle")):
            found.append(f"line {node.lineno}: {name}(allow_pickle=True)")
        elif parts[-1] == "from_pretrained" and _keyword(node, "use_safetensors") is not None:
            value = _keyword(node, "use_safetensors")
            if isinstance(value, ast.Constant) and value.value is False:
                found.append(f"line {node.lineno}: from_pretrained(use_safetensors=False)")
    return found


@pytest.mark.parametrize(
    "snippet, flagged",
    [
        ("import pickle\npickle.load(open(p, 'rb'))", True),
        ("from pickle import loads", True),
        ("import torch\ntorch.load(p)", True),
        ("import torch\ntorch.load(p, weights_only=False)", True),
        ("import torch\ntorch.load(p, weights_only=True)", False),
        ("import numpy as np\nnp.load(p, allow_pickle=True)", True),
        ("import numpy as np\nnp.load(p, mmap_mode='r', allow_pickle=False)", False),
        ("import pandas as pd\npd.read_pickle(p)", True),
        ("import joblib\njoblib.load(p)", True),
        ("from safetensors.torch import load_file\nload_file(p)", False),
        ("import torch\ntorch.jit.load(p)", True),
    ],
)
def test_scanner_flags_unpickling_calls(snippet, flagged):
    assert bool(unsafe_calls(snippet)) is flagged


def test_no_project_file_unpickles_anything():
    files = _python_files()
    assert any(p.parts[-2:] == ("data", "dataset.py") for p in files)  # the scan sees the package
    offenders = {}
    for path in files:
        rel = path.relative_to(REPO_ROOT).as_posix()
        calls = [c for c in unsafe_calls(path.read_text())
                 if not any(rel == f and f"{name}()" in c for f, name in ALLOWED)]
        if calls:
            offenders[rel] = calls
    assert not offenders, f"calls that could unpickle a user-supplied file: {offenders}"

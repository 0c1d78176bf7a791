"""Package attributes imported on first use (PEP 562), shared by `cp2image.models` and `cp2image.evaluation`.

Why: importing a light submodule (`cp2image.models.hub` to name a model,
`cp2image.evaluation.files` to read a saved evaluation) runs its package's `__init__`
first; with eager re-exports that would import torch or scikit-learn for nothing.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's `__getattr__` and `__dir__`: name → `getattr(import package.<homes[name]>, name)`.

    `namespace` is the package's `globals()`: a name, once imported, is stored there, so
    later look-ups skip `__getattr__`; `dir(package)` lists the lazy names before their use.
    Use: `__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())`.
    """

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__

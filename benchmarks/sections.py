"""The runner's sections, in output order: each one's rows come from its own bench module.

`benchmarks/run.py` is the only benchmark entry. A section is a pair of functions in the
module that owns the stage (`<key>_names(ctx)`, `<key>_run(ctx)`, or `names` / `run` for
the control benchmark); everything they share (the bundled model and dataset, profiles,
the reference-size stand-in) is in `bench_fixtures.py`. The quick-run test checks that
every name a section lists is produced.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

from runner_support import Section


def _from(module: str, name: str) -> Callable:
    """`module.name`, imported when called: a module that cannot import here turns only its own
    section's rows into "not available", as the runner promises."""
    def call(ctx):
        return getattr(importlib.import_module(module), name)(ctx)
    call.__name__ = f"{module}.{name}"
    return call


def _section(key: str, title: str, module: str, prefix: str | None = None, **flags) -> Section:
    names, run = (f"{prefix}_names", f"{prefix}_run") if prefix else ("names", "run")
    return Section(key, title, _from(module, names), _from(module, run), **flags)


SECTIONS: list[Section] = [
    _section("peak", "Reference", "bench_model", "peak"),
    _section("generation", "Generation", "bench_model", "generation"),
    _section("training", "Training", "bench_training", "training"),
    _section("loader", "Data loader", "bench_training", "loader"),
    _section("features", "Features", "bench_features", "features"),
    _section("simulator", "Simulator", "bench_simulator", "simulator"),
    _section("analysis", "Analysis", "bench_analysis", "analysis"),
    _section("control", "Feature control", "bench_control", full_only=True),
    _section("app", "App", "bench_app", "app"),
    _section("sessions", "App sessions", "app_sessions", "sessions", full_only=True),
    _section("gpu", "GPU", "bench_gpu", "gpu", gpu_only=True),
]

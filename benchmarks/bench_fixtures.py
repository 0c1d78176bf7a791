"""What several benchmark sections share: the model, dataset and profiles they measure.

Each is built once per run and kept in `Context.cache`. The stand-in for a missing
bundled model is `bench_model.reference_model()` (the paper's reference size: p = 453,
32 filters, kernel 5), built in that one place.
"""
from __future__ import annotations

import importlib
import os
import warnings
from typing import Any

import numpy as np

PAPER_SECONDS_PER_IMAGE = 0.02  # CP2Image paper, GPU, per generated image
REFERENCE_FEATURES = 453  # the paper's p


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def bundled_model(ctx) -> Any:
    """The bundled CP2Image (shared, eval mode), loaded the way the app loads it."""
    if "model" not in ctx.cache:
        try:
            from cp2image.models.hub import load_model

            loaded = load_model(None)
            ctx.cache["model"], ctx.cache["model_source"] = loaded.model, loaded.source
        except Exception as err:  # no bundled model: the paper-size stand-in, random weights
            ctx.cache["model"] = importlib.import_module("bench_model").reference_model()
            ctx.cache["model_source"] = (f"UNTRAINED paper-size stand-in (p = 453; not the bundled architecture) "
                                         f"({type(err).__name__}: no bundled model)")
    return ctx.cache["model"]


def bundled_dataset(ctx) -> Any:
    if "dataset" not in ctx.cache:
        from cp2image.assets import bundled_dataset_dir
        from cp2image.data import open_dataset

        ctx.cache["dataset"] = open_dataset(bundled_dataset_dir())
    return ctx.cache["dataset"]


def model_profiles(ctx, n: int) -> np.ndarray:
    """`n` profiles (raw units, model feature order): real bundled cells when the model
    and dataset agree, else draws from the model's stored feature distribution."""
    model = bundled_model(ctx)
    try:
        cells = bundled_dataset(ctx).cells
        table = cells[model.feature_names].to_numpy(dtype=np.float64)
        table = table[np.isfinite(table).all(axis=1)]
        reps = int(np.ceil(n / len(table)))
        return np.tile(table, (reps, 1))[:n]
    except Exception:
        mean = np.asarray(model.config.feature_mean)
        scale = np.asarray(model.config.feature_scale)
        return np.random.default_rng(0).normal(mean, scale, size=(n, len(mean)))


def bench_module(area: str):
    """A stage engineer's `benchmarks/bench_<area>.py`, imported (never copied)."""
    return importlib.import_module(f"bench_{area}")


def quiet(fn):
    def wrapped():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    return wrapped

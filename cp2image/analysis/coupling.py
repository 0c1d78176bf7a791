"""How CellProfiler features move together, so a sweep can move a feature *with* its partners.

Sweeping one feature with every other held fixed asks the generator for cells it
has never seen (a larger nucleus with the same perimeter, radius and integrated
DNA intensity), and a generator trained on real profiles mostly ignores such a
request. The "coupled" sweep instead moves the other features by their
conditional expectation given the swept one. For a Gaussian with covariance Σ
(in the model's normalised space, z = (x − mean) / scale), moving feature j by δ
moves the expectation of every feature by

    E[z | z_j + δ] − E[z | z_j] = Σ[:, j] / Σ[j, j] · δ        (`conditional_shift`)

Σ is the Ledoit–Wolf shrunk covariance of the model's TRAINING cells (shrinkage
keeps it well conditioned with ~500 features and a few thousand cells). It is
stored beside the model as `feature_coupling.safetensors` with the features' valid
domain (`cp2image.analysis.domain`): the sweep clips requests to that domain.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cp2image.analysis.domain import DEFAULT_MARGIN, feature_domain
from cp2image.analysis.space import require_columns, resolve_feature

log = logging.getLogger(__name__)

COUPLING_FILE = "feature_coupling.safetensors"
FORMAT_VERSION = "1"
_TENSORS = ("mean", "covariance", "lower", "upper")


class CouplingError(ValueError):
    """A feature-coupling file is unreadable or does not belong to the model beside it."""


@dataclass
class FeatureCoupling:
    """Covariance of the training cells in the model's normalised space, plus each feature's domain."""

    feature_names: list[str]  # model order
    mean: np.ndarray  # (p,) mean of the normalised training cells (≈ 0 by construction)
    covariance: np.ndarray  # (p, p) Ledoit–Wolf shrunk covariance, normalised space
    shrinkage: float  # Ledoit–Wolf shrinkage coefficient in [0, 1]
    n_cells: int  # training cells the covariance was fitted on
    lower: np.ndarray  # (p,) valid lower bound, RAW units (see cp2image.analysis.domain)
    upper: np.ndarray  # (p,) valid upper bound, RAW units
    margin: float = DEFAULT_MARGIN  # fraction of the reference range allowed beyond it
    normalisation_digest: str = ""  # digest of the model's feature mean/scale it was fitted under
    source: str = ""  # where the cells came from (dataset, split)

    def __post_init__(self) -> None:
        p = len(self.feature_names)
        if p == 0:
            raise CouplingError("feature coupling has no features")
        if len(set(self.feature_names)) != p:
            raise CouplingError("feature coupling lists a feature twice")
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.covariance = np.asarray(self.covariance, dtype=np.float64)
        self.lower = np.asarray(self.lower, dtype=np.float64)
        self.upper = np.asarray(self.upper, dtype=np.float64)
        for name, arr, shape in (("mean", self.mean, (p,)), ("covariance", self.covariance, (p, p)),
                                 ("lower", self.lower, (p,)), ("upper", self.upper, (p,))):
            if arr.shape != shape:
                raise CouplingError(f"feature coupling: {name} has shape {arr.shape}, expected {shape} for {p} features")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.covariance))):
            raise CouplingError("feature coupling: mean or covariance contains NaN/inf")
        if not np.allclose(self.covariance, self.covariance.T, rtol=1e-6, atol=1e-9):
            raise CouplingError("feature coupling: covariance is not symmetric")
        if np.any(np.diag(self.covariance) <= 0):
            raise CouplingError("feature coupling: covariance has a non-positive variance on its diagonal")
        if np.any(np.isnan(self.lower) | np.isnan(self.upper)) or np.any(self.lower > self.upper):
            raise CouplingError("feature coupling: a lower bound is NaN or above its upper bound")
        if not 0.0 <= float(self.shrinkage) <= 1.0:
            raise CouplingError(f"feature coupling: shrinkage {self.shrinkage} is outside [0, 1]")
        if int(self.n_cells) < 2:
            raise CouplingError(f"feature coupling: fitted on {self.n_cells} cells; need at least 2")

    def index(self, feature: str) -> int:
        """Model-order position of `feature` (exact or case-insensitive name)."""
        return self.feature_names.index(resolve_feature(feature, self.feature_names))

    def correlation(self, feature: str) -> np.ndarray:
        """(p,) correlation of every feature with `feature` under the shrunk covariance."""
        j = self.index(feature)
        sd = np.sqrt(np.diag(self.covariance))
        return self.covariance[:, j] / (sd * sd[j])


def normalisation_digest(model: Any) -> str:
    """SHA-256 of the model's feature names, mean and scale: a coupling is valid only under these."""
    stats = getattr(model, "feature_statistics", None)  # optional part of the ProfileModel protocol
    if stats is None:
        return _digest(list(getattr(model, "feature_names", [])), None, None)
    return _digest(list(stats.names), stats.mean, stats.scale)


def _digest(names: list[str], mean: Any, scale: Any) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(list(names)).encode())
    for values in (mean, scale):
        if values is not None:
            h.update(np.asarray(values, dtype=np.float64).tobytes())
    return h.hexdigest()


def fit_coupling(
    model: Any, cells: pd.DataFrame, *, margin: float = DEFAULT_MARGIN, source: str = ""
) -> FeatureCoupling:
    """Ledoit–Wolf covariance of `cells` in the model's normalised space, and each feature's domain.

    `cells` are the model's training cells (raw CellProfiler values, matched by name).
    Rows with a NaN/inf in any model feature are left out. The normalisation is the
    model's own (`model.normalise`, which clips at ±clip_sigma), so the covariance is
    in the units the generator sees. The domain is fitted on the same cells.
    """
    from sklearn.covariance import LedoitWolf  # heavy import, only when fitting

    names = list(model.feature_names)
    require_columns(cells, names, what="cells")
    raw = cells.loc[:, names].apply(pd.to_numeric, errors="coerce")
    finite = np.isfinite(raw.to_numpy(dtype=np.float64)).all(axis=1)
    raw = raw.loc[finite]
    if len(raw) < 2:
        raise ValueError(f"need at least 2 cells with finite values for all {len(names)} features; got {len(raw)}")
    if (~finite).any():
        log.info("fit_coupling: %d of %d cells have NaN/inf features and are left out", int((~finite).sum()), finite.size)
    z = np.asarray(model.normalise(raw, warn=False), dtype=np.float64)  # (N, p)
    # Features constant in these cells get unit variance so Σ[j, j] > 0 (they then move nothing).
    lw = LedoitWolf().fit(z)
    cov = np.asarray(lw.covariance_, dtype=np.float64)
    cov = (cov + cov.T) / 2
    diag = np.diag(cov).copy()
    flat = diag <= 1e-12
    if flat.any():
        cov[flat, :] = 0.0
        cov[:, flat] = 0.0
        cov[flat, flat] = 1.0
    lower, upper = feature_domain(names, raw, margin=margin)
    return FeatureCoupling(
        feature_names=names, mean=z.mean(axis=0), covariance=cov, shrinkage=float(lw.shrinkage_),
        n_cells=int(len(raw)), lower=lower, upper=upper, margin=float(margin),
        normalisation_digest=normalisation_digest(model), source=source,
    )


def regression_columns(covariance: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """C (p, k) with C[:, m] = Σ[:, j] / Σ[j, j] for j = columns[m] (every column by default).

    Moving feature j by δ moves every feature i by C[i, j] · δ in expectation (C[j, j] = 1);
    a feature with no variance (Σ[j, j] ≤ 0) moves nothing.
    """
    cov = np.asarray(covariance, dtype=np.float64)  # (p, p)
    cols = np.arange(cov.shape[1]) if columns is None else np.asarray(columns)
    diag = cov[cols, cols].copy()  # (k,)
    diag[diag <= 0] = 1.0
    return cov[:, cols] / diag[None, :]


def conditional_shift(coupling: FeatureCoupling, feature: str, delta: float | np.ndarray) -> np.ndarray:
    """Expected change of every feature (normalised space) when `feature` changes by `delta`.

    Σ[:, j] / Σ[j, j] · δ: the regression of each feature on feature j under the
    Gaussian with covariance Σ. The swept feature itself moves by exactly δ.
    A scalar δ gives (p,); an array of n deltas gives (n, p).
    """
    j = coupling.index(feature)
    beta = regression_columns(coupling.covariance, np.array([j]))[:, 0]  # (p,)
    delta = np.asarray(delta, dtype=np.float64)
    if not np.all(np.isfinite(delta)):
        raise ValueError("delta must be finite")
    if delta.ndim == 0:
        return beta * float(delta)
    return delta.reshape(-1, 1) * beta[None, :]


# --------------------------------------------------------------------------- files
def save_coupling(coupling: FeatureCoupling, model_dir: str | os.PathLike) -> Path:
    """Write `model_dir/feature_coupling.safetensors` atomically (temp file, then rename)."""
    from safetensors.numpy import save

    from cp2image.analysis.export import write_atomic  # late: export imports matplotlib

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ValueError(f"model folder {model_dir} does not exist")
    tensors = {name: np.ascontiguousarray(getattr(coupling, name), dtype=np.float64) for name in _TENSORS}
    metadata = {
        "format_version": FORMAT_VERSION,
        "feature_names": json.dumps(list(coupling.feature_names)),
        "shrinkage": repr(float(coupling.shrinkage)),
        "n_cells": str(int(coupling.n_cells)),
        "margin": repr(float(coupling.margin)),
        "normalisation_digest": coupling.normalisation_digest,
        "source": coupling.source,
        "method": "sklearn.covariance.LedoitWolf on model-normalised training cells; domain: "
                  "physical bounds ∩ reference range ± margin·range",
    }
    target = model_dir / COUPLING_FILE
    write_atomic(target, save(tensors, metadata=metadata))  # temp file + fsync + rename, umask permissions
    return target


def load_coupling(model_dir: str | os.PathLike) -> FeatureCoupling | None:
    """The coupling stored beside a model, or None when the folder has none.

    Checked against the folder's `config.json` (when present): the feature names and
    the normalisation the covariance was fitted under must be the model's, else a
    `CouplingError` says which and how to refit.
    """
    from safetensors import SafetensorError, safe_open

    model_dir = Path(model_dir)
    path = model_dir / COUPLING_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            keys = set(fh.keys())
            missing = [k for k in _TENSORS if k not in keys]
            if missing:
                raise CouplingError(f"{path}: lacks tensor(s) {missing}; the file is not a cp2image feature coupling")
            tensors = {k: fh.get_tensor(k) for k in _TENSORS}
    except (SafetensorError, OSError) as err:
        raise CouplingError(f"{path}: cannot read it as safetensors ({err}); the file is truncated or corrupt — "
                            "refit it with `cp2image perturb fit-coupling`") from err
    if meta.get("format_version") != FORMAT_VERSION:
        raise CouplingError(f"{path}: format version {meta.get('format_version')!r}, expected {FORMAT_VERSION!r}")
    try:
        names = json.loads(meta["feature_names"])
        shrinkage, n_cells, margin = float(meta["shrinkage"]), int(meta["n_cells"]), float(meta["margin"])
    except (KeyError, ValueError, TypeError) as err:
        raise CouplingError(f"{path}: metadata is incomplete or malformed ({err!r})") from err
    coupling = FeatureCoupling(
        feature_names=list(names), shrinkage=shrinkage, n_cells=n_cells, margin=margin,
        normalisation_digest=meta.get("normalisation_digest", ""), source=meta.get("source", ""), **tensors,
    )
    if not math.isfinite(shrinkage):
        raise CouplingError(f"{path}: shrinkage is not finite")
    config_path = model_dir / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        model_names = list(config.get("feature_names", []))
        if model_names and model_names != coupling.feature_names:
            extra = sorted(set(coupling.feature_names) - set(model_names))[:3]
            lacking = sorted(set(model_names) - set(coupling.feature_names))[:3]
            detail = (f"the coupling has {len(coupling.feature_names)} features, the model {len(model_names)}; "
                      f"only in the coupling: {extra}; only in the model: {lacking}"
                      if extra or lacking else "same features in a different order")
            raise CouplingError(f"{path}: its feature names do not match {config_path.name} ({detail}); "
                                "refit it for this model with `cp2image perturb fit-coupling`")
        expected = _digest(model_names, config.get("feature_mean"), config.get("feature_scale"))
        if model_names and coupling.normalisation_digest and coupling.normalisation_digest != expected:
            raise CouplingError(f"{path}: it was fitted under a different feature normalisation than "
                                f"{config_path.name} (the model was retrained); refit it with "
                                "`cp2image perturb fit-coupling`")
    return coupling


__all__ = [
    "COUPLING_FILE", "CouplingError", "FeatureCoupling", "conditional_shift", "fit_coupling",
    "load_coupling", "normalisation_digest", "save_coupling",
]

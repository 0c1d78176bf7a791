"""Evaluation of generated cell images: FID/KID, feature correlation, MoA fidelity, reports.

Public API:
- `frechet_distance(mu1, sigma1, mu2, sigma2)`, `frechet_distance_from_features(x, y)`
- `kid(x, y, *, n_subsets=100, subset_size=1000, seed=0) -> KIDResult`
- `feature_correlation(real, generated) -> CorrelationReport` (Fig. 4a/b)
- `moa_fidelity(train, train_moa, real_test, generated_test, test_moa) -> MoAFidelityResult` and
  `moa_fidelity_grouped(...)` (GroupKFold over held-out plates/wells): the fidelity ratio
  generated/real accuracy, overall and per MoA
- `moa_signatures(real, generated, moa)`: per MoA, the shift from DMSO real vs generated
- `InceptionExtractor.load(path | None)` (user-supplied weights; `CP2IMAGE_INCEPTION`)
- `train_domain_encoder(images, labels) -> EncoderTraining`, `DomainEncoder.load(dir)`
- `evaluate(model, dataset, split="test", out_dir=None, *, config=None, reference=None) -> dict`
  and `build_reference(dataset, config=...)` to share the real-cell work between models;
  `evaluate_against(model, reference)` returns an `EvaluationResult` whose `metrics` are typed
  (`EvaluationMetrics`, serialised by `.to_dict()`).

Modules: `config` (EvaluationConfig), `reference` (the real cells, built once), `run`
(generate, measure, score, write files), `metrics` (typed metrics.json), `distances`.

Outputs of `evaluate(..., out_dir=DIR)`: `metrics.json`, `correlation.csv` (one row per
feature: feature, pearson_r, rank, n_pairs, compartment, group, real/generated mean
and sd), `pairs.parquet` (long table: cell, feature, real, generated, plus
Metadata_Compound/Concentration/MoA of the cell; capped at ~2.5 MB of values),
`moa_per_class.csv`, `moa_predictions.csv`, `moa_signature.csv`, `report.md` / `report.html` with `figures/*.png|svg`.

The names above are imported on first use (PEP 562): `cp2image.evaluation.files` (the app's
model card and correlation report) then reads saved results without importing scikit-learn.
"""
from __future__ import annotations

import sys
import types
from typing import Any

from cp2image.lazy import lazy_exports

_HOMES = {  # exported name → the submodule that defines it
    "CorrelationReport": "correlation", "feature_correlation": "correlation",
    "EvaluationConfig": "config",
    "EvaluationMetrics": "metrics",
    "RealReference": "reference", "build_reference": "reference",
    "EvaluationResult": "run", "evaluate": "run", "evaluate_against": "run", "write_outputs": "run",
    "GaussianStats": "frechet", "frechet_distance": "frechet", "frechet_distance_from_features": "frechet",
    "InceptionExtractor": "inception", "InceptionUnavailable": "inception",
    "KIDResult": "kid", "kid": "kid",
    "MoAFidelityResult": "moa_fidelity", "moa_fidelity": "moa_fidelity", "moa_fidelity_grouped": "moa_fidelity",
    "moa_signatures": "moa_signature",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())


class _Package(types.ModuleType):
    """`kid` and `moa_fidelity` name both a submodule and its function: the package attribute stays
    the function (as the former eager `from .kid import kid` left it) when the submodule is imported."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _HOMES.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

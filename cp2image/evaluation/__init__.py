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
"""
from cp2image.evaluation.correlation import CorrelationReport, feature_correlation
from cp2image.evaluation.config import EvaluationConfig
from cp2image.evaluation.metrics import EvaluationMetrics
from cp2image.evaluation.reference import RealReference, build_reference
from cp2image.evaluation.run import EvaluationResult, evaluate, evaluate_against, write_outputs
from cp2image.evaluation.frechet import GaussianStats, frechet_distance, frechet_distance_from_features
from cp2image.evaluation.inception import InceptionExtractor, InceptionUnavailable
from cp2image.evaluation.kid import KIDResult, kid
from cp2image.evaluation.moa_fidelity import MoAFidelityResult, moa_fidelity, moa_fidelity_grouped
from cp2image.evaluation.moa_signature import moa_signatures

__all__ = [
    "CorrelationReport",
    "EvaluationConfig",
    "EvaluationMetrics",
    "EvaluationResult",
    "GaussianStats",
    "InceptionExtractor",
    "InceptionUnavailable",
    "KIDResult",
    "MoAFidelityResult",
    "RealReference",
    "build_reference",
    "evaluate",
    "evaluate_against",
    "feature_correlation",
    "frechet_distance",
    "frechet_distance_from_features",
    "kid",
    "moa_fidelity",
    "moa_fidelity_grouped",
    "moa_signatures",
    "write_outputs",
]

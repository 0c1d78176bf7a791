"""Evaluate a generative model against a prepared reference, and write the results.

Steps (each timed and reported):
1. Generate images for the reference's held-out cells (conditional, reconstruction or
   unconditional) and measure them with the same `cp2image.features.measure`.
2. Distances: FID/KID on Inception pool features (only with weights); Fréchet
   distance and KID in standardised CellProfiler feature space and in the domain
   encoder embedding — always available, *not* comparable with Inception FID.
3. Per-feature correlation (Fig. 4a/b), MoA fidelity and per-MoA signatures, when
   images pair with cells.
4. metrics.json, correlation.csv, pairs.parquet and a report under `out_dir`.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cp2image.data.columns import COMPOUND, CONCENTRATION, FAILED_COLUMN, MOA, PLATE, WELL
from cp2image.data.dataset import Dataset
from cp2image.evaluation.config import EvaluationConfig
from cp2image.evaluation.correlation import CorrelationReport, feature_correlation
from cp2image.evaluation.distances import cellprofiler_space, distances_in_space
from cp2image.evaluation.generation import GeneratedImages, generate_for_cells
from cp2image.evaluation.image_quality import quality_summary
from cp2image.evaluation.metrics import (
    DatasetInfo, EncoderSpace, EvaluationMetrics, InceptionMetrics, ModelInfo, Section, jsonable,
)
from cp2image.evaluation.moa_fidelity import MoAFidelityResult, moa_fidelity, moa_fidelity_grouped
from cp2image.evaluation.moa_diagnosis import DiagnosisConfig, MoADiagnosis, diagnose_moa_loss
from cp2image.evaluation.moa_signature import moa_signatures
from cp2image.evaluation.reference import RealReference, Timer, build_reference, group_keys, measure_crops, sample_rows

logger = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    """Everything computed, for the report and for callers that want more than metrics."""

    metrics: EvaluationMetrics
    reference: RealReference
    generated: GeneratedImages
    generated_measured: pd.DataFrame
    correlation: CorrelationReport | None
    moa: MoAFidelityResult | None
    signatures: pd.DataFrame | None = None  # per-MoA shift vs control, real vs generated
    diagnosis: MoADiagnosis | None = None  # MoA-loss probes (EvaluationConfig.moa_diagnosis)


# ----------------------------------------------------------------------------- one section each


def _inception(reference: RealReference, generated: GeneratedImages, config: EvaluationConfig,
               timings: dict[str, float]) -> InceptionMetrics:
    if reference.inception is None or reference.inception_features is None:
        return InceptionMetrics(distances=None, reason=reference.inception_note)
    with Timer(timings, "inception_generated"):
        subset = reference.inception_subset if reference.inception_subset is not None else slice(None)
        gen_inc = reference.inception.features(generated.images[subset], progress=config.progress,
                                               desc="inception (generated)")
    return InceptionMetrics(distances=distances_in_space(reference.inception_features, gen_inc, config=config),
                            weights=reference.inception.describe())


def _encoder_space(reference: RealReference, generated: GeneratedImages, config: EvaluationConfig,
                   timings: dict[str, float]) -> EncoderSpace:
    if reference.encoder is None or reference.encoder_embedding is None:
        return EncoderSpace(distances=None, encoder=reference.encoder_note)
    with Timer(timings, "encoder_space"):
        gen_emb = reference.encoder.embed(generated.images, batch_size=config.batch_size)
        distances = distances_in_space(reference.encoder_embedding, gen_emb, config=config)
    return EncoderSpace(distances=distances, encoder=reference.encoder_note)


def _correlation(reference: RealReference, generated: GeneratedImages, gen_measured: pd.DataFrame,
                 config: EvaluationConfig, timings: dict[str, float]) -> tuple[Section, CorrelationReport | None]:
    if not generated.paired:
        return Section(False, reason="unconditional model: generated images do not correspond to cells"), None
    with Timer(timings, "correlation"):
        correlation = feature_correlation(reference.measured, gen_measured)
    return Section(True, correlation.summary(threshold=config.threshold, n=config.n_top)), correlation


def _moa(reference: RealReference, generated: GeneratedImages, gen_measured: pd.DataFrame,
         config: EvaluationConfig, timings: dict[str, float]) -> tuple[Section, MoAFidelityResult | None]:
    if not generated.paired:
        return Section(False, reason="unconditional model: no MoA per generated image"), None
    if reference.labels is None or (reference.train_measured is None and reference.groups is None):
        return Section(False, reason=f"no {config.label_column} labels with ≥ 2 classes in train and held-out"), None
    with Timer(timings, "moa_fidelity"):
        moa = _moa_fidelity(reference, gen_measured, config)
    values = {"label_column": config.label_column, "grouping": reference.moa_grouping, **moa.summary()}
    return Section(True, values), moa


def _moa_fidelity(reference: RealReference, gen_measured: pd.DataFrame, config: EvaluationConfig) -> MoAFidelityResult:
    """The configured protocol: GroupKFold over held-out plates/wells, or training split → held-out."""
    if reference.moa_grouping == "split":
        return moa_fidelity(reference.train_measured, reference.train_labels, reference.measured, gen_measured,
                            reference.labels, config=config.moa_classifier)
    return moa_fidelity_grouped(
        reference.measured, gen_measured, reference.labels, reference.groups,
        train=reference.train_measured, train_moa=reference.train_labels, train_groups=reference.train_groups,
        group_name=reference.moa_grouping, config=config.moa_classifier,
    )


def _diagnosis(reference: RealReference, gen_measured: pd.DataFrame, config: EvaluationConfig,
               timings: dict[str, float]) -> MoADiagnosis | None:
    """The MoA-loss probes, trained on the training split's profiles (the "split" protocol) whatever the
    fidelity protocol; None with a logged reason where the dataset cannot support them."""
    if not config.moa_diagnosis:
        return None
    if reference.labels is None or reference.train_measured is None:
        logger.warning("MoA diagnosis skipped: it needs labelled held-out cells and the training split's profiles")
        return None
    cells = reference.cells
    if reference.groups is not None:
        groups = reference.groups
    elif WELL in cells.columns or PLATE in cells.columns:
        groups = group_keys(cells, "well" if WELL in cells.columns else "plate")
    else:
        logger.warning("MoA diagnosis skipped: the held-out cells have no plate or well columns")
        return None
    with Timer(timings, "moa_diagnosis"):
        return diagnose_moa_loss(reference.train_measured, reference.train_labels, reference.measured, gen_measured,
                                 reference.labels, groups=groups,
                                 config=DiagnosisConfig(seed=config.seed, classifier=config.moa_classifier))


def _signatures(reference: RealReference, generated: GeneratedImages, gen_measured: pd.DataFrame,
                config: EvaluationConfig) -> tuple[Section, pd.DataFrame | None]:
    if not (generated.paired and reference.labels is not None and (reference.labels == config.moa_control).sum() >= 3):
        return Section(False, reason=f"needs paired images and ≥ 3 held-out {config.moa_control!r} cells"), None
    signatures = moa_signatures(reference.measured, gen_measured, reference.labels, control=config.moa_control)
    return Section(True, {"control": config.moa_control, "per_class": signatures.to_dict(orient="records")}), signatures


def _image_quality(reference: RealReference, generated: GeneratedImages, timings: dict[str, float]) -> Section:
    with Timer(timings, "image_quality"):
        labels = reference.labels if generated.paired else None
        return Section(True, quality_summary(reference.images, generated.images, labels))


def _failed_fraction(frame: pd.DataFrame) -> float | None:
    return float(frame[FAILED_COLUMN].mean()) if FAILED_COLUMN in frame else None


# ----------------------------------------------------------------------------- evaluation


def evaluate_against(model: object, reference: RealReference, *, config: EvaluationConfig | None = None,
                     model_source: str | None = None) -> EvaluationResult:
    """Evaluate one model against a prepared reference (no files written)."""
    config = config or EvaluationConfig()
    timings: dict[str, float] = {}
    with Timer(timings, "generate"):
        generated = generate_for_cells(model, reference.cells, reference.images, batch_size=config.batch_size,
                                       seed=config.seed)
    with Timer(timings, "measure_generated"):
        gen_measured = measure_crops(generated.images, config, "generated")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")

    inception = _inception(reference, generated, config, timings)
    with Timer(timings, "cellprofiler_space"):
        cp_space = cellprofiler_space(reference.measured, gen_measured, config=config)
    encoder_space = _encoder_space(reference, generated, config, timings)
    corr_section, correlation = _correlation(reference, generated, gen_measured, config, timings)
    moa_section, moa = _moa(reference, generated, gen_measured, config, timings)
    signature_section, signatures = _signatures(reference, generated, gen_measured, config)
    diagnosis = _diagnosis(reference, gen_measured, config, timings)
    quality = _image_quality(reference, generated, timings)

    metrics = EvaluationMetrics(
        created_utc=created,
        model=ModelInfo(type=type(model).__name__, mode=generated.mode, paired=generated.paired,
                        source=model_source or ""),
        dataset=DatasetInfo(path=reference.dataset_path, split=reference.split, n_heldout=reference.n_heldout,
                            n_excluded_nonfinite=reference.n_excluded, n_evaluated=int(len(reference.rows))),
        inception=inception, cellprofiler_space=cp_space, encoder_space=encoder_space,
        correlation=corr_section, moa_fidelity=moa_section, moa_signature=signature_section,
        segmentation_failed_fraction={"real": _failed_fraction(reference.measured),
                                      "generated": _failed_fraction(gen_measured)},
        image_quality=quality,
        config=jsonable(asdict(config)),
        timings_s={**{f"reference_{k}": v for k, v in reference.timings.items()}, **timings},
    )
    return EvaluationResult(metrics=metrics, reference=reference, generated=generated,
                            generated_measured=gen_measured, correlation=correlation, moa=moa,
                            signatures=signatures, diagnosis=diagnosis)


# ----------------------------------------------------------------------------- files


def _pairs(result: EvaluationResult, config: EvaluationConfig) -> pd.DataFrame:
    """Long real/generated table of a random subset of cells within the size budget, with their metadata."""
    correlation = result.correlation
    n_features = len(correlation.table)
    max_cells = max(1, config.pairs_budget_bytes // max(1, 8 * n_features))
    keep = sample_rows(np.arange(len(correlation.real)), max_cells, config.seed + 3)
    pairs = correlation.pairs(cells=keep)
    if len(keep) < len(correlation.real):
        logger.info("pairs.parquet keeps a random %d of %d cells (size budget)", len(keep), len(correlation.real))
    meta_cols = [c for c in (COMPOUND, CONCENTRATION, MOA) if c in result.reference.cells.columns]
    if meta_cols:
        cells = result.reference.cells[meta_cols].reset_index(drop=True)
        cells.index.name = "cell"
        pairs = pairs.join(cells, on="cell")
        for c in meta_cols:
            if pairs[c].dtype == object:
                pairs[c] = pairs[c].astype("category")
    return pairs.reset_index(drop=True)


def write_outputs(result: EvaluationResult, out_dir: str | os.PathLike, *, config: EvaluationConfig,
                  report: bool = True) -> Path:
    """metrics.json, correlation.csv, pairs.parquet (capped), moa_per_class.csv and the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if result.correlation is not None:
        result.correlation.table.to_csv(out / "correlation.csv", index=False)
        _pairs(result, config).to_parquet(out / "pairs.parquet", index=False, compression="zstd")
    if result.moa is not None:
        result.moa.per_class.to_csv(out / "moa_per_class.csv", index=False)
        result.moa.predictions.to_csv(out / "moa_predictions.csv", index=False)
    if result.signatures is not None:
        result.signatures.to_csv(out / "moa_signature.csv", index=False)
    if result.diagnosis is not None:
        result.diagnosis.probes.to_csv(out / "moa_diagnosis.csv", index=False)
        (out / "moa_diagnosis.json").write_text(json.dumps(jsonable(result.diagnosis.summary()), indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(jsonable(result.metrics.to_dict()), indent=2) + "\n")
    if report:
        from cp2image.evaluation.report import write_report

        write_report(result, out)
    return out


def evaluate(
    model: object,
    dataset: Dataset | str | os.PathLike,
    split: str = "test",
    out_dir: str | os.PathLike | None = None,
    *,
    config: EvaluationConfig | None = None,
    reference: RealReference | None = None,
    model_source: str | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """Evaluate `model` on `dataset`'s held-out `split`; write outputs when `out_dir` is given.

    Returns the metrics dictionary (the content of metrics.json).
    """
    config = config or EvaluationConfig()
    if config.split != split:
        config = replace(config, split=split)
    if reference is None:
        reference = build_reference(dataset, config=config)
    elif reference.split != split:
        raise ValueError(f"reference was built on split {reference.split!r}, not {split!r}")
    result = evaluate_against(model, reference, config=config, model_source=model_source)
    if out_dir is not None:
        write_outputs(result, out_dir, config=config, report=report)
    return result.metrics.to_dict()

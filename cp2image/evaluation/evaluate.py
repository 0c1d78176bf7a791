"""Evaluate a generative model on a dataset's held-out split.

Steps (each timed and reported):
1. Reference (model-independent, reusable across models): pick held-out cells with
   finite profiles, measure CellProfiler features on their crops, measure a sample
   of training crops for the MoA classifier, train (or load) the domain encoder,
   and extract Inception features when weights are supplied.
2. Generate images for those cells (conditional, reconstruction or unconditional).
3. Measure the generated crops with the same `cp2image.features.measure`.
4. Distances: FID/KID on Inception pool features (only with weights); Fréchet
   distance and KID in standardised CellProfiler feature space and in the domain
   encoder embedding — always available, *not* comparable with Inception FID.
5. Per-feature correlation (Fig. 4a/b) and MoA fidelity, when images pair with cells.
6. metrics.json, correlation.csv, pairs.parquet and a report under `out_dir`.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cp2image.data.columns import FAILED_COLUMN, feature_columns
from cp2image.data.dataset import Dataset, DatasetError, open_dataset
from cp2image.evaluation.correlation import CorrelationReport, feature_correlation
from cp2image.evaluation.encoder import DomainEncoder, EncoderConfig, train_domain_encoder
from cp2image.evaluation.frechet import frechet_distance_from_features
from cp2image.evaluation.generation import GeneratedImages, generate_for_cells
from cp2image.evaluation.inception import InceptionExtractor, InceptionUnavailable
from cp2image.evaluation.kid import kid
from cp2image.evaluation.moa_signature import moa_signatures
from cp2image.evaluation.moa_fidelity import MoAClassifierConfig, MoAFidelityResult, moa_fidelity, moa_fidelity_grouped

logger = logging.getLogger(__name__)

NOT_COMPARABLE = (
    "not comparable with Inception FID (different feature space); compare models only "
    "within this column, on the same dataset, split and encoder"
)
MOA_GROUPINGS: tuple[str, ...] = ("auto", "plate", "well", "split")


@dataclass
class EvaluationConfig:
    """What to evaluate and how much of it."""

    split: str = "test"  # held-out split(s) to evaluate on; "test,val" pools both
    max_cells: int | None = 2000  # held-out cells evaluated (seeded random subset); None = all
    max_train_cells: int = 5000  # real training cells measured to train the MoA classifier
    batch_size: int = 256  # generation / embedding batch
    n_jobs: int | None = None  # feature measurement worker processes (None = in process)
    kid_subsets: int = 100  # KID: number of random subsets (reference: 100)
    kid_subset_size: int = 1000  # KID: subset size (reference: 1000; shrinks to the smaller set)
    inception: str | None = None  # FID Inception TorchScript file; None → $CP2IMAGE_INCEPTION
    inception_max_cells: int | None = None  # evaluated cells passed through Inception (None = all; it is slow on CPU)
    encoder_dir: str | None = None  # saved domain encoder to reuse; None → train one on the train split
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    label_column: str = "Metadata_MoA"  # classes of the encoder and the MoA classifier
    # MoA fidelity protocol: "plate"/"well" = GroupKFold over held-out plates (wells), each scored by a
    # classifier trained on the training split + other folds; "split" = training split → held-out split;
    # "auto" = "plate" when no plate spans training and held-out cells, else "well"
    moa_groups: str = "auto"
    moa_classifier: MoAClassifierConfig = field(default_factory=MoAClassifierConfig)
    moa_control: str = "DMSO"  # baseline of the per-MoA signatures (moa_signature.csv)
    # real cells' profiles: "measure" them here (default), or "stored" = the dataset's own columns,
    # valid only when the dataset was measured by cp2image.features.measure (same code as the generated
    # crops); saves measuring thousands of real crops again on every evaluation
    real_features: str = "measure"
    threshold: float = 0.5  # correlation threshold of the Fig. 4a fraction
    n_top: int = 20  # top/bottom features listed
    pairs_budget_bytes: int = 2_500_000  # cap on pairs.parquet's raw float32 payload (random cells beyond it)
    seed: int = 0
    progress: bool = False  # tqdm bars


@dataclass
class RealReference:
    """Everything about the real held-out (and training) cells; shared by all models."""

    dataset_path: str
    split: str
    rows: np.ndarray  # dataset row indices of the evaluated held-out cells
    cells: pd.DataFrame  # their table rows (RangeIndex)
    images: np.ndarray  # their crops, uint8 (N, 3, H, W), in RAM
    measured: pd.DataFrame  # features measured on these crops
    n_heldout: int  # held-out cells before filtering/subsampling
    n_excluded: int  # held-out cells dropped for non-finite profiles
    labels: np.ndarray | None  # class label per held-out cell (label_column), or None
    train_measured: pd.DataFrame | None
    train_labels: np.ndarray | None
    encoder: DomainEncoder | None
    encoder_note: str
    encoder_embedding: np.ndarray | None
    inception: InceptionExtractor | None
    inception_note: str
    inception_features: np.ndarray | None
    inception_subset: np.ndarray | None = None  # positions (into rows) of the cells Inception sees
    moa_grouping: str = "split"  # resolved MoA protocol: "plate", "well" or "split"
    groups: np.ndarray | None = None  # plate or plate/well of each held-out cell (grouped protocols)
    train_groups: np.ndarray | None = None  # the same for the classifier's training cells
    timings: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers


class _Timer:
    def __init__(self, sink: dict[str, float], name: str) -> None:
        self.sink, self.name = sink, name

    def __enter__(self) -> "_Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sink[self.name] = round(time.perf_counter() - self.start, 3)


def _as_dataset(dataset: Dataset | str | os.PathLike) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else open_dataset(dataset)


def _finite_rows(cells: pd.DataFrame, features: list[str]) -> np.ndarray:
    if not features:
        return np.ones(len(cells), dtype=bool)
    values = cells[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(values).all(axis=1)
    if FAILED_COLUMN in cells.columns:
        ok &= ~cells[FAILED_COLUMN].fillna(False).to_numpy(dtype=bool)
    return ok


def _labels(cells: pd.DataFrame, column: str) -> np.ndarray | None:
    if column not in cells.columns:
        return None
    labels = cells[column].astype(str).to_numpy()
    return labels if len(np.unique(labels)) >= 2 else None


def _measure(images: np.ndarray, config: EvaluationConfig, desc: str) -> pd.DataFrame:
    from cp2image.features import measure

    logger.info("measuring CellProfiler features on %d %s crops", len(images), desc)
    return measure(np.asarray(images), n_jobs=config.n_jobs, progress=config.progress)


def _real_profiles(ds: Dataset, rows: np.ndarray, config: EvaluationConfig, desc: str) -> pd.DataFrame:
    """Profiles of real crops: measured here, or read from the dataset (config.real_features)."""
    if config.real_features == "measure":
        return _measure(np.asarray(ds.images[rows]), config, desc)
    if config.real_features != "stored":
        raise ValueError(f"real_features must be 'measure' or 'stored', got {config.real_features!r}")
    method = (ds.meta.get("provenance") or {}).get("features")
    if method != "cp2image.features.measure":
        raise DatasetError(f"{ds.path}: real_features='stored' needs features measured by cp2image.features.measure "
                           f"(provenance says {method!r}); measure them here instead")
    names = [f for f in ds.feature_names if f in ds.cells.columns]
    if len(names) < len(ds.feature_names):
        raise DatasetError(f"{ds.path}: stored profiles lack {len(ds.feature_names) - len(names)} listed features")
    columns = names + ([FAILED_COLUMN] if FAILED_COLUMN in ds.cells.columns else [])
    logger.info("using the stored profiles of %d %s crops", len(rows), desc)
    return ds.cells.iloc[rows][columns].reset_index(drop=True)


def _sample(rows: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or len(rows) <= limit:
        return rows
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=int(limit), replace=False))


def _group_keys(cells: pd.DataFrame, grouping: str) -> np.ndarray:
    """Plate, or plate/well, of each cell (the unit the MoA classifier must not see twice)."""
    if grouping == "plate":
        return cells["Metadata_Plate"].astype(str).to_numpy()
    plate = cells["Metadata_Plate"].astype(str) if "Metadata_Plate" in cells.columns else ""
    return (plate + "/" + cells["Metadata_Well"].astype(str)).to_numpy()


def resolve_moa_grouping(cells: pd.DataFrame, heldout: np.ndarray, train: np.ndarray, requested: str) -> str:
    """Which unit the MoA classifier keeps apart: "plate", "well" or "split" (see EvaluationConfig.moa_groups)."""
    if requested not in MOA_GROUPINGS:
        raise ValueError(f"moa_groups must be one of {MOA_GROUPINGS}, got {requested!r}")
    if requested == "split":
        return "split"
    need = {"plate": ["Metadata_Plate"], "well": ["Metadata_Well"]}
    if requested != "auto":
        missing = [c for c in need[requested] if c not in cells.columns]
        if missing:
            raise ValueError(f"moa_groups={requested!r} needs column(s) {missing}; use 'split' or another grouping")
        return requested
    if "Metadata_Plate" in cells.columns:
        plates = cells["Metadata_Plate"].astype(str).to_numpy()
        if not set(plates[heldout]) & set(plates[train]):
            return "plate"
    return "well" if "Metadata_Well" in cells.columns else "split"


# ----------------------------------------------------------------------------- reference


def build_reference(dataset: Dataset | str | os.PathLike, *, config: EvaluationConfig | None = None) -> RealReference:
    """Measure, embed and (optionally) Inception-encode the real cells once."""
    config = config or EvaluationConfig()
    ds = _as_dataset(dataset)
    timings: dict[str, float] = {}
    names = [part.strip() for part in config.split.split(",") if part.strip()]
    heldout = np.unique(np.concatenate([ds.split_indices(name) for name in names])) if names else np.array([], int)
    if len(heldout) == 0:
        splits = sorted(ds.cells["Metadata_Split"].astype(str).unique()) if "Metadata_Split" in ds.cells else []
        raise DatasetError(f"{ds.path}: no cells in split {config.split!r} (splits present: {splits})")
    features = [f for f in ds.feature_names if f in ds.cells.columns]
    ok = _finite_rows(ds.cells.iloc[heldout], features)
    usable = heldout[ok]
    if len(usable) < 2:
        raise DatasetError(
            f"{ds.path}: only {len(usable)} cell(s) in split {config.split!r} have finite profiles; need ≥ 2"
        )
    rows = _sample(usable, config.max_cells, config.seed)
    cells = ds.cells.iloc[rows].reset_index(drop=True)
    images = np.asarray(ds.images[rows])
    labels = _labels(cells, config.label_column)
    with _Timer(timings, "measure_real"):
        measured = _real_profiles(ds, rows, config, "real held-out")

    # MoA classifier training data: real training crops, measured the same way
    train_measured = train_labels = train_groups = groups = None
    train_rows = ds.split_indices("train") if "Metadata_Split" in ds.cells.columns else np.array([], int)
    grouping = resolve_moa_grouping(ds.cells, heldout, train_rows, config.moa_groups)
    if labels is not None and len(train_rows):
        train_rows = _sample(train_rows, config.max_train_cells, config.seed + 1)
        train_labels_all = _labels(ds.cells.iloc[train_rows], config.label_column)
        if train_labels_all is not None:
            with _Timer(timings, "measure_train"):
                train_measured = _real_profiles(ds, train_rows, config, "real training")
            train_labels = train_labels_all
            if grouping != "split":
                train_groups = _group_keys(ds.cells.iloc[train_rows], grouping)
    if labels is not None and grouping != "split":
        groups = _group_keys(cells, grouping)

    encoder, encoder_note = _reference_encoder(ds, config, timings)
    embedding = None
    if encoder is not None:
        with _Timer(timings, "embed_real"):
            embedding = encoder.embed(images, batch_size=config.batch_size)

    inception, inception_note, inception_features = None, "", None
    try:
        with _Timer(timings, "inception_load"):
            inception = InceptionExtractor.load(config.inception)
        inception_note = f"{inception.path} ({inception.identity})"
    except InceptionUnavailable as err:
        inception_note = str(err)
        logger.warning("FID/KID skipped: %s", err)
    inception_subset = None
    if inception is not None:
        inception_subset = _sample(np.arange(len(rows)), config.inception_max_cells, config.seed + 2)
        with _Timer(timings, "inception_real"):
            inception_features = inception.features(images[inception_subset], progress=config.progress,
                                                    desc="inception (real)")

    return RealReference(
        dataset_path=str(ds.path), split=config.split, rows=rows, cells=cells, images=images,
        measured=measured, n_heldout=int(len(heldout)), n_excluded=int((~ok).sum()), labels=labels,
        train_measured=train_measured, train_labels=train_labels, encoder=encoder, encoder_note=encoder_note,
        encoder_embedding=embedding, inception=inception, inception_note=inception_note,
        inception_features=inception_features, inception_subset=inception_subset, timings=timings,
        moa_grouping=grouping, groups=groups, train_groups=train_groups,
    )


def _reference_encoder(ds: Dataset, config: EvaluationConfig, timings: dict[str, float]) -> tuple[DomainEncoder | None, str]:
    if config.encoder_dir and Path(config.encoder_dir, "encoder.safetensors").is_file():
        encoder = DomainEncoder.load(config.encoder_dir)
        return encoder, f"loaded from {config.encoder_dir}"
    train_rows = ds.split_indices("train") if "Metadata_Split" in ds.cells.columns else np.array([], int)
    labels = _labels(ds.cells.iloc[train_rows], config.label_column) if len(train_rows) else None
    if labels is None:
        note = f"no domain encoder: the train split lacks ≥ 2 classes in {config.label_column}"
        logger.warning(note)
        return None, note
    with _Timer(timings, "train_encoder"):
        trained = train_domain_encoder(ds.images[train_rows], labels, config=config.encoder, progress=config.progress)
    last = trained.history[-1] if trained.history else {}
    note = (
        f"trained here on {min(len(train_rows), config.encoder.max_train_cells)} training crops "
        f"({config.label_column} classifier, final train accuracy {last.get('train_accuracy', float('nan')):.3f})"
    )
    if config.encoder_dir:
        trained.encoder.save(config.encoder_dir, extra={"dataset": str(ds.path), "history": trained.history})
        note += f", saved to {config.encoder_dir}"
    return trained.encoder, note


# ----------------------------------------------------------------------------- distances


def distances_in_space(real: np.ndarray, generated: np.ndarray, *, config: EvaluationConfig) -> dict[str, Any]:
    """Fréchet distance and KID between two feature sets (rows = cells)."""
    result = kid(real, generated, n_subsets=config.kid_subsets, subset_size=config.kid_subset_size, seed=config.seed)
    extra: dict[str, Any] = {}
    try:
        frechet: float | None = frechet_distance_from_features(real, generated)
    except ValueError as err:  # e.g. a truly complex (Σ1Σ2)^½ from rank-deficient covariances
        frechet = None
        extra["frechet_error"] = str(err)
        logger.warning("Fréchet distance not computed: %s", err)
    return {
        **extra,
        "frechet": frechet,
        "kid": result.mean,
        "kid_std": result.std,
        "kid_subset_size": result.subset_size,
        "n_real": int(len(real)),
        "n_generated": int(len(generated)),
        "dim": int(real.shape[1]),
    }


def cellprofiler_space(real: pd.DataFrame, generated: pd.DataFrame, *, config: EvaluationConfig,
                       min_finite_fraction: float = 0.95) -> dict[str, Any]:
    """Distances in CellProfiler feature space, standardised with the real cells' mean and sd.

    Features: in both tables, finite in ≥95 % of real cells and not constant there.
    Cells with any non-finite selected feature (e.g. failed segmentation) are dropped
    and counted, so a model whose images cannot be segmented is visible as such.
    """
    names = [c for c in feature_columns(real) if c in generated.columns]
    r = real[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    g = generated[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    finite_frac = np.isfinite(r).mean(axis=0)
    with np.errstate(invalid="ignore"):
        sd = np.nanstd(np.where(np.isfinite(r), r, np.nan), axis=0, ddof=1) if len(r) > 1 else np.zeros(len(names))
    keep = (finite_frac >= min_finite_fraction) & np.isfinite(sd) & (sd > 0)
    if not keep.any():
        raise ValueError("no CellProfiler feature is finite and varying in the real cells")
    r, g, sd = r[:, keep], g[:, keep], sd[keep]
    r_ok = np.isfinite(r).all(axis=1)
    g_ok = np.isfinite(g).all(axis=1)
    mean = r[r_ok].mean(axis=0)
    out: dict[str, Any] = {
        "n_features": int(keep.sum()),
        "real_dropped": int((~r_ok).sum()),
        "generated_dropped": int((~g_ok).sum()),
        "generated_dropped_fraction": float((~g_ok).mean()),
        "note": NOT_COMPARABLE,
    }
    if g_ok.sum() < 2:
        out.update({"frechet": None, "kid": None, "reason": "fewer than 2 generated crops could be measured"})
        return out
    out.update(distances_in_space((r[r_ok] - mean) / sd, (g[g_ok] - mean) / sd, config=config))
    if min(r_ok.sum(), g_ok.sum()) <= out["n_features"]:  # Σ of n ≤ d samples is singular
        out["warning"] = (
            f"covariances are rank-deficient ({int(min(r_ok.sum(), g_ok.sum()))} cells ≤ {out['n_features']} "
            "features): the Fréchet distance is unstable; evaluate more cells"
        )
        logger.warning(out["warning"])
    return out


# ----------------------------------------------------------------------------- evaluation


@dataclass
class EvaluationResult:
    """Everything computed, for the report and for callers that want more than metrics."""

    metrics: dict[str, Any]
    reference: RealReference
    generated: GeneratedImages
    generated_measured: pd.DataFrame
    correlation: CorrelationReport | None
    moa: MoAFidelityResult | None
    signatures: pd.DataFrame | None = None  # per-MoA shift vs control, real vs generated


def evaluate_against(model: object, reference: RealReference, *, config: EvaluationConfig | None = None,
                     model_source: str | None = None) -> EvaluationResult:
    """Evaluate one model against a prepared reference (no files written)."""
    config = config or EvaluationConfig()
    timings: dict[str, float] = {}
    with _Timer(timings, "generate"):
        generated = generate_for_cells(model, reference.cells, reference.images, batch_size=config.batch_size,
                                       seed=config.seed)
    with _Timer(timings, "measure_generated"):
        gen_measured = _measure(generated.images, config, "generated")

    metrics: dict[str, Any] = {
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"type": type(model).__name__, "mode": generated.mode, "paired": generated.paired,
                  "source": model_source or ""},
        "dataset": {"path": reference.dataset_path, "split": reference.split, "n_heldout": reference.n_heldout,
                    "n_excluded_nonfinite": reference.n_excluded, "n_evaluated": int(len(reference.rows))},
    }

    # Inception FID / KID
    if reference.inception is not None and reference.inception_features is not None:
        with _Timer(timings, "inception_generated"):
            subset = reference.inception_subset if reference.inception_subset is not None else slice(None)
            gen_inc = reference.inception.features(generated.images[subset], progress=config.progress,
                                                   desc="inception (generated)")
        inc = distances_in_space(reference.inception_features, gen_inc, config=config)
        metrics["inception"] = {"available": True, "fid": inc["frechet"], "kid": inc["kid"],
                                "kid_std": inc["kid_std"], "kid_subset_size": inc["kid_subset_size"],
                                "n_real": inc["n_real"], "n_generated": inc["n_generated"],
                                "weights": reference.inception.describe(),
                                "note": "Inception-v3 pool features (2048-d); equality of the weights file with "
                                        "the standard 2015-12-05 FID weights is not verified here"}
    else:
        metrics["inception"] = {"available": False, "fid": None, "kid": None, "reason": reference.inception_note}

    with _Timer(timings, "cellprofiler_space"):
        metrics["cellprofiler_space"] = cellprofiler_space(reference.measured, gen_measured, config=config)

    if reference.encoder is not None and reference.encoder_embedding is not None:
        with _Timer(timings, "encoder_space"):
            gen_emb = reference.encoder.embed(generated.images, batch_size=config.batch_size)
            enc = distances_in_space(reference.encoder_embedding, gen_emb, config=config)
        metrics["encoder_space"] = {**enc, "encoder": reference.encoder_note, "note": NOT_COMPARABLE}
    else:
        metrics["encoder_space"] = {"frechet": None, "kid": None, "reason": reference.encoder_note}

    correlation = None
    if generated.paired:
        with _Timer(timings, "correlation"):
            correlation = feature_correlation(reference.measured, gen_measured)
        metrics["correlation"] = {"available": True,
                                  **correlation.summary(threshold=config.threshold, n=config.n_top)}
    else:
        metrics["correlation"] = {"available": False,
                                  "reason": "unconditional model: generated images do not correspond to cells"}

    moa = None
    if not generated.paired:
        metrics["moa_fidelity"] = {"available": False, "reason": "unconditional model: no MoA per generated image"}
    elif reference.labels is None or (reference.train_measured is None and reference.groups is None):
        metrics["moa_fidelity"] = {"available": False,
                                   "reason": f"no {config.label_column} labels with ≥ 2 classes in train and held-out"}
    else:
        with _Timer(timings, "moa_fidelity"):
            moa = _moa_fidelity(reference, gen_measured, config)
        metrics["moa_fidelity"] = {"available": True, "label_column": config.label_column,
                                   "grouping": reference.moa_grouping, **moa.summary()}

    signatures = None
    if generated.paired and reference.labels is not None and (reference.labels == config.moa_control).sum() >= 3:
        signatures = moa_signatures(reference.measured, gen_measured, reference.labels, control=config.moa_control)
        metrics["moa_signature"] = {"available": True, "control": config.moa_control,
                                    "per_class": signatures.to_dict(orient="records")}
    else:
        metrics["moa_signature"] = {"available": False,
                                    "reason": f"needs paired images and ≥ 3 held-out {config.moa_control!r} cells"}

    metrics["segmentation_failed_fraction"] = {
        "real": float(reference.measured[FAILED_COLUMN].mean()) if FAILED_COLUMN in reference.measured else None,
        "generated": float(gen_measured[FAILED_COLUMN].mean()) if FAILED_COLUMN in gen_measured else None,
    }
    metrics["config"] = _jsonable(asdict(config))
    metrics["timings_s"] = {**{f"reference_{k}": v for k, v in reference.timings.items()}, **timings}
    metrics["headline"] = headline(metrics)
    return EvaluationResult(metrics=metrics, reference=reference, generated=generated,
                            generated_measured=gen_measured, correlation=correlation, moa=moa,
                            signatures=signatures)


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


def headline(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The flat numbers a results table shows (None where not available)."""
    corr, moa = metrics.get("correlation", {}), metrics.get("moa_fidelity", {})
    cp, enc, inc = metrics.get("cellprofiler_space", {}), metrics.get("encoder_space", {}), metrics.get("inception", {})
    return {
        "fid_inception": inc.get("fid"),
        "kid_inception": inc.get("kid"),
        "frechet_cellprofiler": cp.get("frechet"),
        "kid_cellprofiler": cp.get("kid"),
        "frechet_encoder": enc.get("frechet"),
        "kid_encoder": enc.get("kid"),
        "generated_unmeasurable_fraction": cp.get("generated_dropped_fraction"),
        "fraction_r_above_0.5": corr.get("fraction_above") if corr.get("available") else None,
        "moa_accuracy_generated": moa.get("generated_accuracy") if moa.get("available") else None,
        "moa_accuracy_real": moa.get("real_accuracy") if moa.get("available") else None,
        "moa_fidelity_ratio": moa.get("ratio") if moa.get("available") else None,
        "moa_fidelity_balanced_ratio": moa.get("balanced_ratio") if moa.get("available") else None,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


def write_outputs(result: EvaluationResult, out_dir: str | os.PathLike, *, config: EvaluationConfig,
                  report: bool = True) -> Path:
    """metrics.json, correlation.csv, pairs.parquet (capped), moa_per_class.csv and the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if result.correlation is not None:
        result.correlation.table.to_csv(out / "correlation.csv", index=False)
        n_features = len(result.correlation.table)
        max_cells = max(1, config.pairs_budget_bytes // max(1, 8 * n_features))
        keep = _sample(np.arange(len(result.correlation.real)), max_cells, config.seed + 3)
        pairs = result.correlation.pairs(cells=keep)
        if len(keep) < len(result.correlation.real):
            logger.info("pairs.parquet keeps a random %d of %d cells (size budget)", len(keep),
                        len(result.correlation.real))
        meta_cols = [c for c in ("Metadata_Compound", "Metadata_Concentration", "Metadata_MoA")
                     if c in result.reference.cells.columns]
        if meta_cols:
            cells = result.reference.cells[meta_cols].reset_index(drop=True)
            cells.index.name = "cell"
            pairs = pairs.join(cells, on="cell")
            for c in meta_cols:
                if pairs[c].dtype == object:
                    pairs[c] = pairs[c].astype("category")
        pairs.reset_index(drop=True).to_parquet(out / "pairs.parquet", index=False, compression="zstd")
    if result.moa is not None:
        result.moa.per_class.to_csv(out / "moa_per_class.csv", index=False)
        result.moa.predictions.to_csv(out / "moa_predictions.csv", index=False)
    if result.signatures is not None:
        result.signatures.to_csv(out / "moa_signature.csv", index=False)
    (out / "metrics.json").write_text(json.dumps(_jsonable(result.metrics), indent=2) + "\n")
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
    return result.metrics


__all__ = [
    "EvaluationConfig",
    "EvaluationResult",
    "RealReference",
    "build_reference",
    "cellprofiler_space",
    "distances_in_space",
    "evaluate",
    "evaluate_against",
    "headline",
    "resolve_moa_grouping",
    "write_outputs",
    "NOT_COMPARABLE",
]

"""MoA fidelity: do generated images still look like their drug's mechanism of action?

A classifier is trained on CellProfiler profiles measured on *real* crops. It then
predicts the MoA of held-out cells twice: from profiles measured on the real held-out
crops, and from profiles measured on the images generated for those same cells. The
accuracy on generated images divided by the accuracy on real ones — the **fidelity
ratio** — tells how much of the MoA information a biologist could read from real
cells survives generation (1 = all of it; the real accuracy is the ceiling).

Two protocols, both keeping every predicted cell's plate (or well) out of the
classifier's training data, because cells of one plate share illumination and
staining effects that a classifier would otherwise learn instead of the MoA:

- `moa_fidelity` ("split"): train on the training split, predict the held-out split.
  Right when the held-out split holds every MoA the training split does.
- `moa_fidelity_grouped` (GroupKFold): the held-out cells are cut into k folds by
  group (plate, or plate/well); each fold is predicted by a classifier trained on the
  training-split profiles plus the *other* held-out folds. Every held-out cell is
  scored, and an MoA that sits on few plates is still learnt from its other plates —
  needed on real BBBC021, where some MoAs occur on a handful of plates only.

The classifier is deliberately plain (median imputation, standardisation,
class-balanced multinomial logistic regression) so that differences come from the
images, not from the classifier. Class balancing matters on real screens: DMSO is
most of the cells, and an unweighted classifier scores well by calling everything DMSO.

A cluster bootstrap over the held-out groups (cells of one plate/well resampled
together) gives a confidence interval on the ratio, because held-out sets on real
data are small and their plates differ.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, confusion_matrix
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cp2image.data.columns import feature_columns

logger = logging.getLogger(__name__)

PER_CLASS_COLUMNS = ["moa", "n", "real_recall", "generated_recall", "ratio"]


@dataclass
class MoAClassifierConfig:
    """Settings of the profile classifier and of the fidelity statistics."""

    C: float = 0.1  # inverse L2 strength of the logistic regression
    max_iter: int = 1000  # solver iterations
    min_finite_fraction: float = 0.9  # drop features finite in fewer training cells than this
    class_weight: str | None = "balanced"  # "balanced": each MoA weighs the same (DMSO dominates real screens)
    n_splits: int = 5  # GroupKFold folds over the held-out groups (grouped protocol); fewer if fewer groups
    n_bootstrap: int = 1000  # cluster-bootstrap resamples for the ratio's interval (0 = none)
    confidence: float = 0.95  # level of that interval
    seed: int = 0

    def __post_init__(self) -> None:
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        if self.n_splits < 2:
            raise ValueError(f"n_splits must be ≥ 2, got {self.n_splits}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence}")


@dataclass
class MoAFidelityResult:
    """Accuracy of real-trained classifiers on real and on generated held-out cells."""

    real_accuracy: float
    generated_accuracy: float
    real_balanced_accuracy: float
    generated_balanced_accuracy: float
    ratio: float  # generated_accuracy / real_accuracy (NaN if the real accuracy is 0)
    balanced_ratio: float  # the same for balanced accuracy (mean per-MoA recall)
    ratio_interval: tuple[float, float]  # cluster-bootstrap interval of `ratio` (NaN without resamples)
    balanced_ratio_interval: tuple[float, float]  # the same for `balanced_ratio`
    agreement: float  # fraction of cells where both predictions are the same MoA
    chance_accuracy: float  # accuracy of always predicting the most common training MoA
    protocol: str  # how the classifier's training cells were kept apart from the predicted ones
    n_train: int  # distinct real cells any classifier was trained on
    n_test: int
    n_groups: int  # held-out groups (plates or wells); 0 when not grouped
    n_features: int
    n_unseen_class: int  # held-out cells whose MoA their classifier never saw in training
    classes: list[str]
    per_class: pd.DataFrame  # PER_CLASS_COLUMNS
    confusion_real: pd.DataFrame = field(repr=False)  # rows true MoA, columns predicted
    confusion_generated: pd.DataFrame = field(repr=False)
    predictions: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)  # moa, group, real, generated

    def summary(self) -> dict:
        """JSON-friendly numbers for metrics.json."""
        return {
            "real_accuracy": self.real_accuracy,
            "generated_accuracy": self.generated_accuracy,
            "real_balanced_accuracy": self.real_balanced_accuracy,
            "generated_balanced_accuracy": self.generated_balanced_accuracy,
            "ratio": self.ratio,
            "balanced_ratio": self.balanced_ratio,
            "ratio_interval": list(self.ratio_interval),
            "balanced_ratio_interval": list(self.balanced_ratio_interval),
            "agreement": self.agreement,
            "chance_accuracy": self.chance_accuracy,
            "protocol": self.protocol,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_groups": self.n_groups,
            "n_features": self.n_features,
            "n_unseen_class": self.n_unseen_class,
            "classes": list(self.classes),
            "per_class": self.per_class.to_dict(orient="records"),
        }


def usable_features(train: pd.DataFrame, *others: pd.DataFrame, min_finite_fraction: float = 0.9) -> list[str]:
    """Feature columns present everywhere, mostly finite and not constant in `train`."""
    names = [c for c in feature_columns(train) if all(c in o.columns for o in others)]
    if not names:
        raise ValueError("the profiles share no CellProfiler feature columns (Cells_/Nuclei_/Cytoplasm_)")
    values = train[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    keep_finite = finite.mean(axis=0) >= min_finite_fraction
    with np.errstate(invalid="ignore"):
        spread = np.nanstd(np.where(finite, values, np.nan), axis=0) if finite.any() else np.zeros(len(names))
    keep = keep_finite & (np.nan_to_num(spread) > 0)
    kept = [n for n, k in zip(names, keep) if k]
    if not kept:
        raise ValueError("no feature is finite and varying in the training profiles")
    return kept


def _matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    values = frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    return np.where(np.isfinite(values), values, np.nan)


def fit_moa_classifier(
    profiles: pd.DataFrame, moa: pd.Series | np.ndarray, features: list[str], *, config: MoAClassifierConfig
) -> Pipeline:
    """Fit imputer + scaler + (class-balanced) logistic regression on real profiles."""
    labels = np.asarray(moa).astype(str)
    if len(np.unique(labels)) < 2:
        raise ValueError(f"need at least 2 MoA classes to train a classifier, got {np.unique(labels).tolist()}")
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=config.C, max_iter=config.max_iter, class_weight=config.class_weight,
                           random_state=config.seed),
    )
    model.fit(_matrix(profiles, features), labels)
    return model


def _ratio(generated: float, real: float) -> float:
    return float(generated / real) if real > 0 else float("nan")


def bootstrap_ratio_interval(
    truth: np.ndarray, pred_real: np.ndarray, pred_gen: np.ndarray, groups: np.ndarray | None, *,
    n_resamples: int, confidence: float, seed: int, balanced: bool = False,
) -> tuple[float, float]:
    """Percentile interval of accuracy(generated) / accuracy(real), resampling whole groups.

    Cells of one plate or well are not independent, so groups (not cells) are drawn
    with replacement; without groups, cells are. `balanced=True` bootstraps the ratio
    of balanced accuracies (mean recall over the MoAs present in the resample).
    NaN, NaN when `n_resamples` is 0.
    """
    if n_resamples <= 0 or len(truth) == 0:
        return (float("nan"), float("nan"))
    keys = groups if groups is not None else np.arange(len(truth))
    unique, inverse = np.unique(np.asarray(keys).astype(str), return_inverse=True)
    n_groups = len(unique)
    # per group (rows) and class (columns): cells, real hits, generated hits; one class "all" unless balanced
    classes, cls = np.unique(truth, return_inverse=True) if balanced else (np.array(["all"]), np.zeros(len(truth), int))
    cell = inverse * len(classes) + cls

    def table(weights: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=weights, minlength=n_groups * len(classes)).reshape(n_groups, len(classes))

    size = table(np.ones(len(truth)))
    hit_real, hit_gen = table((pred_real == truth).astype(float)), table((pred_gen == truth).astype(float))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(n_resamples, n_groups))
    counts = np.stack([np.bincount(row, minlength=n_groups) for row in draws]).astype(float)  # (R, G)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = counts @ size  # (R, C)
        real_acc = np.nanmean(np.where(n > 0, (counts @ hit_real) / n, np.nan), axis=1)
        gen_acc = np.nanmean(np.where(n > 0, (counts @ hit_gen) / n, np.nan), axis=1)
        ratios = np.where(real_acc > 0, gen_acc / real_acc, np.nan)
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return (float(low), float(high))


def _result(
    truth: np.ndarray, pred_real: np.ndarray, pred_gen: np.ndarray, *, groups: np.ndarray | None,
    seen: np.ndarray, train_labels: np.ndarray, n_train: int, n_features: int, protocol: str,
    config: MoAClassifierConfig,
) -> MoAFidelityResult:
    """Accuracies, ratios, per-MoA recalls and confusions from the two sets of predictions."""
    classes = sorted(set(train_labels.tolist()) | set(truth.tolist()))
    majority = pd.Series(train_labels).value_counts().idxmax()
    per_class = []
    for moa in classes:
        mask = truth == moa
        if not mask.any():
            continue
        real_recall = float(np.mean(pred_real[mask] == moa))
        gen_recall = float(np.mean(pred_gen[mask] == moa))
        per_class.append({"moa": moa, "n": int(mask.sum()), "real_recall": real_recall,
                          "generated_recall": gen_recall, "ratio": _ratio(gen_recall, real_recall)})

    def confusion(pred: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(confusion_matrix(truth, pred, labels=classes), index=classes, columns=classes)

    real_acc = float(np.mean(pred_real == truth))
    gen_acc = float(np.mean(pred_gen == truth))
    real_bal = float(balanced_accuracy_score(truth, pred_real))
    gen_bal = float(balanced_accuracy_score(truth, pred_gen))
    interval, balanced_interval = (
        bootstrap_ratio_interval(truth, pred_real, pred_gen, groups, n_resamples=config.n_bootstrap,
                                 confidence=config.confidence, seed=config.seed, balanced=balanced)
        for balanced in (False, True))
    predictions = pd.DataFrame({"moa": truth, "group": groups if groups is not None else "",
                                "real": pred_real, "generated": pred_gen})
    return MoAFidelityResult(
        real_accuracy=real_acc, generated_accuracy=gen_acc,
        real_balanced_accuracy=real_bal, generated_balanced_accuracy=gen_bal,
        ratio=_ratio(gen_acc, real_acc), balanced_ratio=_ratio(gen_bal, real_bal), ratio_interval=interval,
        balanced_ratio_interval=balanced_interval,
        agreement=float(np.mean(pred_real == pred_gen)),
        chance_accuracy=float(np.mean(truth == majority)),
        protocol=protocol, n_train=int(n_train), n_test=int(len(truth)),
        n_groups=int(len(np.unique(groups.astype(str)))) if groups is not None else 0,
        n_features=n_features, n_unseen_class=int((~seen).sum()), classes=classes,
        per_class=pd.DataFrame(per_class, columns=PER_CLASS_COLUMNS),
        confusion_real=confusion(pred_real), confusion_generated=confusion(pred_gen), predictions=predictions,
    )


def _check_rows(real_test: pd.DataFrame, generated_test: pd.DataFrame, test_moa) -> None:
    if not (len(real_test) == len(generated_test) == len(test_moa)):
        raise ValueError(
            f"real_test ({len(real_test)}), generated_test ({len(generated_test)}) and test_moa "
            f"({len(test_moa)}) must have one row per held-out cell"
        )


def moa_fidelity(
    train: pd.DataFrame,
    train_moa: pd.Series | np.ndarray,
    real_test: pd.DataFrame,
    generated_test: pd.DataFrame,
    test_moa: pd.Series | np.ndarray,
    *,
    test_groups: pd.Series | np.ndarray | None = None,
    config: MoAClassifierConfig | None = None,
) -> MoAFidelityResult:
    """Train on real training profiles, score real and generated held-out profiles of the same cells.

    `test_groups` (plate or well per held-out cell) only shapes the bootstrap interval.
    """
    config = config or MoAClassifierConfig()
    if len(train) != len(train_moa):
        raise ValueError(f"train has {len(train)} rows but {len(train_moa)} MoA labels")
    _check_rows(real_test, generated_test, test_moa)
    features = usable_features(train, real_test, generated_test, min_finite_fraction=config.min_finite_fraction)
    model = fit_moa_classifier(train, train_moa, features, config=config)
    truth = np.asarray(test_moa).astype(str)
    train_labels = np.asarray(train_moa).astype(str)
    return _result(
        truth, model.predict(_matrix(real_test, features)), model.predict(_matrix(generated_test, features)),
        groups=None if test_groups is None else np.asarray(test_groups).astype(str),
        seen=np.isin(truth, model.classes_), train_labels=train_labels, n_train=len(train),
        n_features=len(features), protocol="split: trained on the training split, scored on the held-out split",
        config=config,
    )


def moa_fidelity_grouped(
    real_test: pd.DataFrame,
    generated_test: pd.DataFrame,
    test_moa: pd.Series | np.ndarray,
    test_groups: pd.Series | np.ndarray,
    *,
    train: pd.DataFrame | None = None,
    train_moa: pd.Series | np.ndarray | None = None,
    train_groups: pd.Series | np.ndarray | None = None,
    group_name: str = "group",
    config: MoAClassifierConfig | None = None,
) -> MoAFidelityResult:
    """GroupKFold over the held-out groups: each fold is scored by a classifier that never saw its groups.

    The classifier of a fold is trained on `train` (real profiles of the generator's
    training split, if given) plus the real held-out profiles of the other folds. Its
    groups must not overlap the held-out groups. Feature selection (finite, varying)
    uses the pooled real profiles and no labels.
    """
    config = config or MoAClassifierConfig()
    _check_rows(real_test, generated_test, test_moa)
    groups = np.asarray(test_groups).astype(str)
    if len(groups) != len(real_test):
        raise ValueError(f"test_groups has {len(groups)} entries for {len(real_test)} held-out cells")
    truth = np.asarray(test_moa).astype(str)
    if train is None:
        train, train_labels = real_test.iloc[:0], np.array([], dtype=str)
    else:
        if train_moa is None or len(train) != len(train_moa):
            raise ValueError(f"train has {len(train)} rows but {0 if train_moa is None else len(train_moa)} MoA labels")
        train_labels = np.asarray(train_moa).astype(str)
        if train_groups is not None:
            shared = sorted(set(np.asarray(train_groups).astype(str)) & set(groups))
            if shared:
                raise ValueError(f"training and held-out cells share {group_name}(s) {shared[:3]}; "
                                 f"split the dataset by {group_name} or choose another grouping")
    unique = np.unique(groups)
    k = min(config.n_splits, len(unique))
    if k < 2 and len(train) == 0:
        raise ValueError(f"need ≥ 2 held-out {group_name}s (got {len(unique)}) or training profiles "
                         "to train the MoA classifier")
    pool = pd.concat([train, real_test], ignore_index=True)
    features = usable_features(pool, real_test, generated_test, min_finite_fraction=config.min_finite_fraction)
    folds = (GroupKFold(n_splits=k).split(real_test, groups=groups) if k >= 2
             else [(np.array([], dtype=int), np.arange(len(real_test)))])
    pred_real = np.empty(len(truth), dtype=object)
    pred_gen = np.empty(len(truth), dtype=object)
    seen = np.zeros(len(truth), dtype=bool)
    real_x, gen_x = _matrix(real_test, features), _matrix(generated_test, features)
    for fit_rows, score_rows in folds:
        fold_train = pd.concat([train, real_test.iloc[fit_rows]], ignore_index=True)
        fold_labels = np.concatenate([train_labels, truth[fit_rows]])
        model = fit_moa_classifier(fold_train, fold_labels, features, config=config)
        pred_real[score_rows] = model.predict(real_x[score_rows])
        pred_gen[score_rows] = model.predict(gen_x[score_rows])
        seen[score_rows] = np.isin(truth[score_rows], model.classes_)
    if (~seen).any():
        missing = sorted(set(truth[~seen]))
        logger.warning("%d held-out cells have an MoA their fold's classifier never saw: %s", (~seen).sum(), missing)
    source = "the training split + " if len(train) else ""
    protocol = (f"GroupKFold by {group_name}: {k} fold(s) over {len(unique)} held-out {group_name}s; "
                f"each fold scored by a classifier trained on {source}the other folds' real cells")
    return _result(truth, pred_real.astype(str), pred_gen.astype(str), groups=groups, seen=seen,
                   train_labels=np.concatenate([train_labels, truth]),
                   n_train=len(train) + (len(truth) if k >= 2 else 0),
                   n_features=len(features), protocol=protocol, config=config)


__all__ = [
    "MoAClassifierConfig",
    "MoAFidelityResult",
    "PER_CLASS_COLUMNS",
    "bootstrap_ratio_interval",
    "fit_moa_classifier",
    "moa_fidelity",
    "moa_fidelity_grouped",
    "usable_features",
]

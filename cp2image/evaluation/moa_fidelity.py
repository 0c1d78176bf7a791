"""MoA fidelity: do generated images still look like their drug's mechanism of action?

A classifier is trained on CellProfiler profiles measured on *real* training crops.
It then predicts the MoA of held-out cells twice: from profiles measured on the real
held-out crops, and from profiles measured on the images generated for those same
cells. The accuracy on generated images beside the accuracy on real ones tells how
much MoA information generation keeps (the real accuracy is the ceiling).

The classifier is deliberately plain (median imputation, standardisation,
multinomial logistic regression) so that differences come from the images, not
from the classifier.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, confusion_matrix
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cp2image.data.columns import feature_columns

logger = logging.getLogger(__name__)


@dataclass
class MoAClassifierConfig:
    """Settings of the profile classifier."""

    C: float = 0.1  # inverse L2 strength of the logistic regression
    max_iter: int = 500  # solver iterations
    min_finite_fraction: float = 0.9  # drop features finite in fewer training cells than this
    seed: int = 0


@dataclass
class MoAFidelityResult:
    """Accuracy of one real-trained classifier on real and on generated held-out cells."""

    real_accuracy: float
    generated_accuracy: float
    real_balanced_accuracy: float
    generated_balanced_accuracy: float
    agreement: float  # fraction of cells where both predictions are the same MoA
    chance_accuracy: float  # accuracy of always predicting the most common training MoA
    n_train: int
    n_test: int
    n_features: int
    classes: list[str]
    per_class: pd.DataFrame  # moa, n, real_recall, generated_recall
    confusion_real: pd.DataFrame = field(repr=False)  # rows true MoA, columns predicted
    confusion_generated: pd.DataFrame = field(repr=False)

    def summary(self) -> dict:
        """JSON-friendly numbers for metrics.json."""
        return {
            "real_accuracy": self.real_accuracy,
            "generated_accuracy": self.generated_accuracy,
            "real_balanced_accuracy": self.real_balanced_accuracy,
            "generated_balanced_accuracy": self.generated_balanced_accuracy,
            "agreement": self.agreement,
            "chance_accuracy": self.chance_accuracy,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_features": self.n_features,
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
    """Fit imputer + scaler + logistic regression on real profiles."""
    labels = np.asarray(moa).astype(str)
    if len(np.unique(labels)) < 2:
        raise ValueError(f"need at least 2 MoA classes to train a classifier, got {np.unique(labels).tolist()}")
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=config.C, max_iter=config.max_iter, random_state=config.seed),
    )
    model.fit(_matrix(profiles, features), labels)
    return model


def moa_fidelity(
    train: pd.DataFrame,
    train_moa: pd.Series | np.ndarray,
    real_test: pd.DataFrame,
    generated_test: pd.DataFrame,
    test_moa: pd.Series | np.ndarray,
    *,
    config: MoAClassifierConfig | None = None,
) -> MoAFidelityResult:
    """Train on real profiles, then score real and generated held-out profiles of the same cells."""
    config = config or MoAClassifierConfig()
    if len(train) != len(train_moa):
        raise ValueError(f"train has {len(train)} rows but {len(train_moa)} MoA labels")
    if not (len(real_test) == len(generated_test) == len(test_moa)):
        raise ValueError(
            f"real_test ({len(real_test)}), generated_test ({len(generated_test)}) and test_moa "
            f"({len(test_moa)}) must have one row per held-out cell"
        )
    features = usable_features(train, real_test, generated_test, min_finite_fraction=config.min_finite_fraction)
    model = fit_moa_classifier(train, train_moa, features, config=config)
    truth = np.asarray(test_moa).astype(str)
    pred_real = model.predict(_matrix(real_test, features))
    pred_gen = model.predict(_matrix(generated_test, features))
    classes = sorted(set(model.classes_.tolist()) | set(truth.tolist()))
    train_labels = pd.Series(np.asarray(train_moa).astype(str))
    majority = train_labels.value_counts().idxmax()

    per_class = []
    for moa in classes:
        mask = truth == moa
        if not mask.any():
            continue
        per_class.append(
            {
                "moa": moa,
                "n": int(mask.sum()),
                "real_recall": float(np.mean(pred_real[mask] == moa)),
                "generated_recall": float(np.mean(pred_gen[mask] == moa)),
            }
        )

    def confusion(pred: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(confusion_matrix(truth, pred, labels=classes), index=classes, columns=classes)

    return MoAFidelityResult(
        real_accuracy=float(np.mean(pred_real == truth)),
        generated_accuracy=float(np.mean(pred_gen == truth)),
        real_balanced_accuracy=float(balanced_accuracy_score(truth, pred_real)),
        generated_balanced_accuracy=float(balanced_accuracy_score(truth, pred_gen)),
        agreement=float(np.mean(pred_real == pred_gen)),
        chance_accuracy=float(np.mean(truth == majority)),
        n_train=int(len(train)),
        n_test=int(len(truth)),
        n_features=len(features),
        classes=classes,
        per_class=pd.DataFrame(per_class, columns=["moa", "n", "real_recall", "generated_recall"]),
        confusion_real=confusion(pred_real),
        confusion_generated=confusion(pred_gen),
    )


__all__ = ["MoAClassifierConfig", "MoAFidelityResult", "moa_fidelity", "fit_moa_classifier", "usable_features"]

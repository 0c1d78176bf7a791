"""Where is the MoA signal lost? Probes that explain a low MoA fidelity ratio.

`moa_fidelity` says *how much* of the MoA information survives generation; this module
says *what kind* of error loses it, by scoring altered profiles with the same
real-trained classifier (issue 13, item 4):

- **same-size independent noise**: the real profiles plus Gaussian noise with, per
  feature, the variance of the generated profiles' error. If this scores far higher than
  the generated profiles, the loss is not the error's size but its structure (errors
  shared across features, pointing along the directions that separate MoAs).
- **offset removed (cross-fitted)**: the generated profiles minus their mean error,
  estimated on the other half of the groups. High → a constant domain shift (blur, a
  staining offset) is what the classifier trips on, and a calibration would fix it.
- **top-k error components removed (oracle)**: the generated profiles with the k largest
  principal components of their error (and its mean) taken out. This uses the real
  profiles, so it is an upper bound for a fix of k directions, not a method.

Plus summary statistics: the median slope of generated on real profiles per feature
(< 1 = shrinkage towards the average cell) and the share of error variance in the top
k components. Everything is in the training profiles' standardised units.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cp2image.evaluation.moa_fidelity import MoAClassifierConfig, moa_fidelity, usable_features

PROBE_COLUMNS = ["probe", "balanced_ratio", "interval_low", "interval_high", "generated_balanced_accuracy"]


@dataclass(frozen=True)
class DiagnosisConfig:
    """Which probes run, and the classifier they share with `moa_fidelity`."""

    error_components: tuple[int, ...] = (5, 20)  # k of the "top-k error components removed" oracles
    seed: int = 0  # noise draw and the halving of groups
    classifier: MoAClassifierConfig = field(default_factory=MoAClassifierConfig)

    def __post_init__(self) -> None:
        if any(int(k) != k or k < 1 for k in self.error_components):
            raise ValueError(f"error_components must be whole numbers ≥ 1, got {self.error_components}")


@dataclass
class MoADiagnosis:
    """Probe scores (PROBE_COLUMNS) and summary statistics of the generated profiles' error."""

    probes: pd.DataFrame
    median_slope: float  # median over features of the slope of generated on real (1 = no shrinkage)
    error_to_real_variance: float  # total error variance / total real variance
    error_variance_share: dict[int, float]  # k → share of error variance in its top k components
    n_features: int

    def summary(self) -> dict:
        return {"median_slope": self.median_slope, "error_to_real_variance": self.error_to_real_variance,
                "error_variance_share": {str(k): v for k, v in self.error_variance_share.items()},
                "n_features": self.n_features, "probes": self.probes.to_dict(orient="records")}


def _standardise(train: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    values = train[names].to_numpy(float)
    mean = np.nanmean(values, axis=0)
    scale = np.nanstd(values, axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def _halves(groups: np.ndarray, seed: int) -> np.ndarray:
    """A boolean mask splitting the cells into two halves by group (whole groups on one side)."""
    unique = np.unique(groups)
    if len(unique) < 2:
        raise ValueError("the offset probe needs cells from at least two groups (plates or wells)")
    first = np.random.default_rng(seed).permutation(unique)[: len(unique) // 2]
    return np.isin(groups, first)


def diagnose_moa_loss(train: pd.DataFrame, train_moa, real: pd.DataFrame, generated: pd.DataFrame, moa, *,
                      groups, config: DiagnosisConfig | None = None) -> MoADiagnosis:
    """Score the generated profiles and the probes above with one real-trained classifier per probe.

    `real` and `generated` hold one row per held-out cell (the same cells, in the same
    order); `groups` (plate or plate/well per cell) shapes the bootstrap intervals and the
    cross-fitted halves.
    """
    config = config or DiagnosisConfig()
    if not (len(real) == len(generated) == len(moa) == len(groups)):
        raise ValueError(f"real ({len(real)}), generated ({len(generated)}), moa ({len(moa)}) and groups "
                         f"({len(groups)}) must have one row per held-out cell")
    groups = np.asarray(groups).astype(str)
    names = usable_features(train, real, generated, min_finite_fraction=config.classifier.min_finite_fraction)
    mean, scale = _standardise(train, names)
    r = (real[names].to_numpy(float) - mean) / scale
    g = (generated[names].to_numpy(float) - mean) / scale
    both = np.isfinite(r) & np.isfinite(g)
    error = np.where(both, g - r, 0.0)
    counts = np.maximum(both.sum(axis=0), 1)
    error_mean = error.sum(axis=0) / counts
    centred = np.where(both, error - error_mean, 0.0)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values * scale + mean, columns=names)

    def probe(label: str, values: np.ndarray) -> dict:
        result = moa_fidelity(train[names], train_moa, real[names], frame(values), moa, test_groups=groups,
                              config=config.classifier)
        low, high = result.balanced_ratio_interval
        return {"probe": label, "balanced_ratio": result.balanced_ratio, "interval_low": low,
                "interval_high": high, "generated_balanced_accuracy": result.generated_balanced_accuracy}

    rows = [probe("generated", g)]
    noise_sd = np.sqrt((centred ** 2).sum(axis=0) / counts)
    noise = np.random.default_rng(config.seed).normal(size=r.shape) * noise_sd
    rows.append(probe("real + independent noise of the error's size", r + noise))
    half = _halves(groups, config.seed)
    offset = np.zeros_like(g)
    for side in (half, ~half):  # each half corrected by the other half's mean error
        other = np.where(both[~side], error[~side], np.nan)
        offset[side] = np.nan_to_num(np.nanmean(other, axis=0)) if len(other) else 0.0
    rows.append(probe("generated, offset removed (cross-fitted by group)", g - offset))
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    variance = singular ** 2
    share = {}
    for k in config.error_components:
        top = components[:k]
        share[k] = float(variance[:k].sum() / variance.sum()) if variance.sum() > 0 else float("nan")
        rows.append(probe(f"generated, top {k} error components removed (oracle)",
                          g - error_mean - (centred @ top.T) @ top))
    slopes = []
    for j in range(len(names)):
        x, y = r[both[:, j], j], g[both[:, j], j]
        if len(x) > 2 and x.std() > 0:
            slopes.append(np.cov(x, y)[0, 1] / x.var(ddof=1))
    real_centred = np.where(both, r - np.nanmean(np.where(both, r, np.nan), axis=0), 0.0)
    return MoADiagnosis(
        probes=pd.DataFrame(rows, columns=PROBE_COLUMNS),
        median_slope=float(np.median(slopes)) if slopes else float("nan"),
        error_to_real_variance=float((centred ** 2).sum() / max((real_centred ** 2).sum(), 1e-12)),
        error_variance_share=share,
        n_features=len(names),
    )


__all__ = ["DiagnosisConfig", "MoADiagnosis", "PROBE_COLUMNS", "diagnose_moa_loss"]

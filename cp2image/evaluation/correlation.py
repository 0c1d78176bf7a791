"""Which CellProfiler features survive generation (the paper's Fig. 4a/b).

Features are measured on the original held-out crops and on the images generated
from those same cells; for each feature, Pearson's r between the two measurements
across cells says how well the model preserves it. The paper reports that more than
30 % of features have r > 0.5 and that the best-kept ones describe the nucleus.

Angular features (AreaShape orientation, an axis angle in [−90°, 90°)) are scored on
their period with the circular correlation of `cp2image.evaluation.circular`: with
plain Pearson a nucleus measured at +89° on the original and −89° on the generated
image would count as a 178° miss, when the two axes are 2° apart. Their value sits in
the same `pearson_r` column (it reads like Pearson r) and the `method` column says
which coefficient a row holds.

Features are matched by name. A feature's r is undefined (NaN) when fewer than
`min_pairs` cells have it finite in both sets or when it is constant in either;
undefined features are listed but excluded from fractions and rankings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cp2image.analysis.domain import circular_period
from cp2image.data.columns import feature_columns
from cp2image.evaluation.circular import circular_r

MIN_PAIRS = 3


@dataclass
class CorrelationReport:
    """Per-feature r between real and generated measurements of the same cells (circular r for angles)."""

    table: pd.DataFrame  # one row per feature, sorted by pearson_r descending (NaN last); `method` names the r
    real: pd.DataFrame  # (n_cells, n_features) measured on originals
    generated: pd.DataFrame  # (n_cells, n_features) measured on generated images

    @property
    def defined(self) -> pd.DataFrame:
        """Rows whose r is finite."""
        return self.table[np.isfinite(self.table["pearson_r"].to_numpy())]

    def fraction_above(self, threshold: float = 0.5) -> float:
        """Fraction of features (with a defined r) whose r exceeds `threshold`."""
        r = self.defined["pearson_r"].to_numpy()
        return float(np.mean(r > threshold)) if len(r) else float("nan")

    def top(self, n: int = 20) -> pd.DataFrame:
        """The n best-preserved features."""
        return self.defined.head(n).reset_index(drop=True)

    def bottom(self, n: int = 20) -> pd.DataFrame:
        """The n worst-preserved features (lowest r first)."""
        return self.defined.tail(n).iloc[::-1].reset_index(drop=True)

    def pairs(self, features: list[str] | None = None, *, cells: np.ndarray | None = None) -> pd.DataFrame:
        """Long table (cell, feature, real, generated) for scatter plots; `cells` picks rows (default all)."""
        names = list(self.table["feature"]) if features is None else list(features)
        unknown = [f for f in names if f not in self.real.columns]
        if unknown:
            raise ValueError(f"features not in this report: {unknown[:5]}")
        rows = np.arange(len(self.real)) if cells is None else np.asarray(cells, dtype=np.int64)
        n = len(rows)
        codes = np.repeat(np.arange(len(names), dtype=np.int32), n)  # feature index per row, no strings
        return pd.DataFrame(
            {
                "cell": np.tile(rows.astype(np.int32), len(names)),
                "feature": pd.Categorical.from_codes(codes, categories=names),
                "real": self.real[names].to_numpy(dtype=np.float32)[rows].T.reshape(-1),
                "generated": self.generated[names].to_numpy(dtype=np.float32)[rows].T.reshape(-1),
            }
        )

    def summary(self, *, threshold: float = 0.5, n: int = 20) -> dict:
        """JSON-friendly summary for metrics.json."""
        defined = self.defined
        return {
            "threshold": threshold,
            "fraction_above": self.fraction_above(threshold),
            "n_features": int(len(self.table)),
            "n_defined": int(len(defined)),
            "n_cells": int(len(self.real)),
            "median_r": float(defined["pearson_r"].median()) if len(defined) else float("nan"),
            "top": self.top(n)[["feature", "pearson_r"]].to_dict(orient="records"),
            "bottom": self.bottom(n)[["feature", "pearson_r"]].to_dict(orient="records"),
        }


def pearson_per_column(a: np.ndarray, b: np.ndarray, *, min_pairs: int = MIN_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of matching columns of two (n, p) arrays over rows finite in both.

    Returns (r, n_pairs); r is NaN where fewer than `min_pairs` pairs exist or a
    column has zero variance.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two arrays of one (n, p) shape, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=0)
    a0 = np.where(ok, a, 0.0)
    b0 = np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_a = a0.sum(axis=0) / n
        mean_b = b0.sum(axis=0) / n
        da = np.where(ok, a - mean_a, 0.0)
        db = np.where(ok, b - mean_b, 0.0)
        cov = (da * db).sum(axis=0)
        var_a = (da * da).sum(axis=0)
        var_b = (db * db).sum(axis=0)
        denom = np.sqrt(var_a * var_b)
        # a column whose spread is at round-off level of its magnitude is constant
        scale_a = np.sqrt(np.where(ok, a0 * a0, 0.0).sum(axis=0))
        scale_b = np.sqrt(np.where(ok, b0 * b0, 0.0).sum(axis=0))
        constant = (np.sqrt(var_a) <= 1e-12 * np.maximum(scale_a, 1e-300)) | (
            np.sqrt(var_b) <= 1e-12 * np.maximum(scale_b, 1e-300)
        )
        r = cov / denom
    r = np.where((n >= min_pairs) & ~constant & (denom > 0), np.clip(r, -1.0, 1.0), np.nan)
    return r, n


def feature_category(name: str) -> tuple[str, str]:
    """(compartment, measurement group) of a CellProfiler column, e.g. ("Nuclei", "AreaShape")."""
    parts = name.split("_")
    return (parts[0], parts[1] if len(parts) > 1 else "")


def _finite_mean_sd(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and sd (ddof=1) over finite entries; NaN where fewer than 2 exist."""
    ok = np.isfinite(values)
    n = ok.sum(axis=0)
    filled = np.where(ok, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / n
        sq = np.where(ok, (values - mean) ** 2, 0.0).sum(axis=0)
        sd = np.sqrt(sq / (n - 1))
    return np.where(n >= 1, mean, np.nan), np.where(n >= 2, sd, np.nan)


def feature_correlation(
    real: pd.DataFrame,
    generated: pd.DataFrame,
    *,
    features: list[str] | None = None,
    min_pairs: int = MIN_PAIRS,
) -> CorrelationReport:
    """Per-feature r between measurements of the same cells, real vs generated.

    Row i of `real` and of `generated` must describe the same cell. Features are the
    CellProfiler columns present in both (or `features`), matched by name. Pearson r,
    except angular features, which get the circular r on their period.
    """
    if len(real) != len(generated):
        raise ValueError(
            f"real has {len(real)} rows but generated has {len(generated)}; rows must pair up cell by cell"
        )
    if features is None:
        gen_cols = set(generated.columns)
        features = [c for c in feature_columns(real) if c in gen_cols]
        if not features:
            raise ValueError("real and generated share no CellProfiler feature columns (Cells_/Nuclei_/Cytoplasm_)")
    else:
        missing = [f for f in features if f not in real.columns or f not in generated.columns]
        if missing:
            raise ValueError(f"feature(s) missing from real or generated measurements: {missing[:10]}")
    real_values = real[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    gen_values = generated[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    r, n = pearson_per_column(real_values, gen_values, min_pairs=min_pairs)
    periods = [circular_period(f) for f in features]
    for i, period in enumerate(periods):
        if period is not None:  # an angle: agreement is measured on its period, not on the line
            r[i] = circular_r(real_values[:, i], gen_values[:, i], period, min_pairs=min_pairs)
    real_mean, real_sd = _finite_mean_sd(real_values)
    gen_mean, gen_sd = _finite_mean_sd(gen_values)
    table = pd.DataFrame(
        {
            "feature": features,
            "pearson_r": r,
            "n_pairs": n.astype(int),
            "method": ["pearson" if p is None else "circular" for p in periods],
            "compartment": [feature_category(f)[0] for f in features],
            "group": [feature_category(f)[1] for f in features],
            "real_mean": real_mean,
            "real_sd": real_sd,
            "generated_mean": gen_mean,
            "generated_sd": gen_sd,
        }
    )
    table = table.sort_values("pearson_r", ascending=False, na_position="last", kind="mergesort")
    table.insert(2, "rank", np.arange(1, len(table) + 1))
    table = table.reset_index(drop=True)
    return CorrelationReport(
        table=table,
        real=real[features].reset_index(drop=True),
        generated=generated[features].reset_index(drop=True),
    )


__all__ = ["CorrelationReport", "feature_correlation", "pearson_per_column", "feature_category"]

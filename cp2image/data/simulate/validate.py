"""Checks that a simulated dataset carries real, recoverable biology.

Three checks, each a function so tests, the build script and users compute them
the same way:

- `nucleus_area_spearman`: Spearman ρ between the *measured* nucleus area and the
  simulator's true nucleus area (segmentation recovers ground truth);
- `moa_accuracy`: single-cell MoA classification (standardised features, shrinkage
  LDA) with whole plates held out, so every test well is unseen;
- `dose_order_along_pc1`: PCA of DMSO + one compound's profiles; the mean PC1 per
  concentration must be monotonic in concentration (the paper's Fig. 5b).

`cp2image sim-check DATASET` prints all three as Markdown.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from cp2image.data.columns import feature_columns


def _features(cells: pd.DataFrame) -> np.ndarray:
    names = feature_columns(cells)
    if not names:
        raise ValueError("no feature columns (Cells_/Nuclei_/Cytoplasm_) found; measure the dataset first")
    x = cells[names].to_numpy(np.float64)
    finite = np.isfinite(x).all(axis=0)
    x = x[:, finite]
    return x[:, x.std(axis=0) > 0]


def nucleus_area_spearman(cells: pd.DataFrame) -> float:
    """Spearman ρ of `Nuclei_AreaShape_Area` (measured) vs `Truth_NucleusArea` (simulated)."""
    missing = [c for c in ("Nuclei_AreaShape_Area", "Truth_NucleusArea") if c not in cells.columns]
    if missing:
        raise ValueError(f"nucleus_area_spearman needs column(s) {missing}")
    return float(spearmanr(cells["Nuclei_AreaShape_Area"], cells["Truth_NucleusArea"])[0])


@dataclass
class MoAAccuracy:
    accuracy: float  # mean over held-out plates, single cells
    per_plate: dict[str, float]
    chance: float  # 1 / number of MoAs
    n_cells: int


def moa_accuracy(cells: pd.DataFrame, *, control: str = "DMSO") -> MoAAccuracy:
    """Leave-one-plate-out single-cell MoA accuracy on measured features.

    Classifier: standardised features → linear discriminant analysis with Ledoit-Wolf
    shrinkage (a regularised linear classifier that copes with ~500 correlated features).
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    treated = (cells["Metadata_MoA"] != control).to_numpy()
    plates = cells["Metadata_Plate"].to_numpy()
    if len(set(plates[treated])) < 2:
        raise ValueError("moa_accuracy needs treated cells on at least two plates to hold plates out")
    x = _features(cells)[treated]
    y = cells["Metadata_MoA"].to_numpy()[treated]
    plates = plates[treated]
    scores: dict[str, float] = {}
    for plate in sorted(set(plates)):
        test = plates == plate
        model = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
        model.fit(x[~test], y[~test])
        scores[str(plate)] = float(model.score(x[test], y[test]))
    return MoAAccuracy(float(np.mean(list(scores.values()))), scores, 1.0 / len(set(y)), int(treated.sum()))


def dose_order_along_pc1(cells: pd.DataFrame, *, compound: str = "latrunculin B", control: str = "DMSO") -> pd.DataFrame:
    """Mean PC1 per concentration (control = 0 µM) from a PCA of control + `compound` profiles.

    PC1's sign is arbitrary; it is oriented so that the control mean is lowest.
    Returns columns concentration, n, pc1_mean, pc1_sd (sorted by concentration).
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    sel = cells["Metadata_Compound"].isin([control, compound]).to_numpy()
    if not (cells.loc[sel, "Metadata_Compound"] == compound).any():
        raise ValueError(f"no cells treated with {compound!r}")
    x = StandardScaler().fit_transform(_features(cells)[sel])
    pc1 = PCA(n_components=1, random_state=0).fit_transform(x)[:, 0]
    conc = np.where(cells.loc[sel, "Metadata_Compound"] == control, 0.0, cells.loc[sel, "Metadata_Concentration"])
    frame = pd.DataFrame({"concentration": conc, "pc1": pc1})
    if frame.loc[frame.concentration == 0, "pc1"].mean() > frame.loc[frame.concentration > 0, "pc1"].mean():
        frame["pc1"] = -frame["pc1"]
    out = frame.groupby("concentration")["pc1"].agg(n="size", pc1_mean="mean", pc1_sd="std").reset_index()
    return out.sort_values("concentration").reset_index(drop=True)


def is_monotonic(order: pd.DataFrame) -> bool:
    """True when mean PC1 strictly increases with concentration."""
    return bool(np.all(np.diff(order["pc1_mean"].to_numpy()) > 0))


def report(cells: pd.DataFrame) -> str:
    """All three checks as Markdown."""
    rho = nucleus_area_spearman(cells)
    acc = moa_accuracy(cells)
    order = dose_order_along_pc1(cells)
    lines = [
        f"- cells: {len(cells)}, features: {len(feature_columns(cells))}",
        f"- Spearman ρ(measured, true nucleus area): {rho:.3f}",
        f"- MoA accuracy, single cells, plates held out: {acc.accuracy:.3f} "
        f"(chance {acc.chance:.3f}; per plate {', '.join(f'{k} {v:.3f}' for k, v in acc.per_plate.items())})",
        f"- latrunculin B mean PC1 by concentration (monotonic: {is_monotonic(order)}):",
        "",
        "| concentration (µM) | cells | mean PC1 | sd PC1 |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {r.concentration:g} | {r.n} | {r.pc1_mean:.2f} | {r.pc1_sd:.2f} |" for r in order.itertuples()]
    return "\n".join(lines)

"""Build the example figure panels (paper Fig. 4c, 5a, 5b/c) from a model and a dataset.

`cp2image figures panels` writes to docs/figures/, for the bundled model and dataset by
default:
- panel-perturbation        four features swept ±2 SD on a representative DMSO cell (the one
                            nearest the DMSO mean whose generated image can be segmented, so the
                            measure-back has something to measure), requested and measured
                            values, slope and Spearman ρ per row (Fig. 4c); "with its correlated
                            features" when the model folder has a feature coupling, else "this
                            feature only"
- panel-perturbation-single the same sweeps with every other feature fixed (the paper's mode),
                            written beside the coupled panel for comparison
- panel-perturbation-measured  requested vs measured nucleus area
- panel-interpolation       DMSO → three MoAs, 50 features a step, cosine under each (Fig. 5a)
- panel-interpolation-cosine   the cosine curves
- panel-latrunculin-pca     PCA of DMSO + latrunculin B doses with the red DMSO → 3 µM line (Fig. 5b)
- panel-latrunculin-line    real cells per dose over images generated along the line (Fig. 5c)
each as PNG (150 dpi), SVG and CSV.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.analysis import export, panels
from cp2image.analysis.interpolate import interpolate_to_moa
from cp2image.analysis.coupling import FeatureCoupling
from cp2image.analysis.perturb import SWEEP_MODES, sweep_feature
from cp2image.analysis.space import drawn, feature_space
from cp2image.analysis.trajectory import CompoundTrajectory, LineResponse, line_response
from cp2image.data.columns import COMPOUND, CONCENTRATION, FAILED_COLUMN, MOA

log = logging.getLogger(__name__)


@dataclass
class ExampleConfig:
    """What the example panels show."""

    perturb_features: tuple[str, ...] = (  # the paper's Fig. 4c rows
        "Nuclei_AreaShape_Area", "Nuclei_AreaShape_Orientation",
        "Nuclei_Intensity_MeanIntensity_DNA", "Cytoplasm_AreaShape_Area",
    )
    n_steps: int = 9  # crops per sweep / line
    span_sd: float = 2.0  # sweep ± this many SDs of the DMSO cells
    target_moas: tuple[str, ...] = ("Actin disruptors", "Microtubule stabilizers", "Eg5 inhibitors")
    dims_per_step: int = 50
    compound: str = "latrunculin B"
    end_concentration: float = 3.0
    scale_bar_um: float = 10.0
    seed: int = 0  # which real cells are shown per dose


def _positions(cells: pd.DataFrame, labels) -> np.ndarray:
    pos = cells.index.get_indexer(labels)
    if (pos < 0).any():
        raise ValueError("some cell labels are not in the cells table")
    return pos


def build_example_panels(model, cells: pd.DataFrame, images: np.ndarray, *,
                         config: ExampleConfig | None = None,
                         coupling: FeatureCoupling | None = None) -> dict[str, panels.Panel]:
    """The example panels by name; `images` aligned with `cells` rows by position.

    With `coupling` (the model's `load_coupling`), the perturbation panel uses the coupled
    sweep and the single-feature sweeps are added as `panel-perturbation-single`.
    """
    cfg = config or ExampleConfig()
    names = list(model.feature_names)
    dmso = cells.loc[cells[COMPOUND] == "DMSO"].dropna(subset=names)
    if dmso.empty:
        raise ValueError("the dataset has no DMSO cells with finite features")
    space = feature_space(model, dmso)
    profile = representative_cell(model, dmso, space)
    out: dict[str, panels.Panel] = {}

    feats = [f for f in cfg.perturb_features if f in names]
    if len(feats) < len(cfg.perturb_features):
        log.warning("model lacks %s; not swept", sorted(set(cfg.perturb_features) - set(feats)))
    modes = ["coupled", "single"] if coupling is not None else ["single"]
    if coupling is None:
        log.warning("no feature coupling given: the perturbation panel sweeps one feature only")
    for mode in modes:
        sweeps = [sweep_feature(model, profile, f, mode=mode, coupling=coupling, n_steps=cfg.n_steps,
                                span=cfg.span_sd, reference=dmso) for f in feats]
        others = "the other features follow their expected change" if mode == "coupled" else "all others fixed"
        name = "panel-perturbation" if mode == modes[0] else "panel-perturbation-single"
        out[name] = panels.perturbation_grid(
            sweeps, scale_bar_um=cfg.scale_bar_um,
            title=f"{SWEEP_MODES[mode].capitalize()}: one feature swept ±{cfg.span_sd:g} SD (DMSO SD), {others}; "
                  "measured back on each image (* = clipped to the valid range)")
        if mode == modes[0]:
            first = sweeps
    sweeps = first
    if sweeps and sweeps[0].measured is not None:
        out["panel-perturbation-measured"] = panels.requested_vs_measured(sweeps[0].table(), rho=sweeps[0].spearman_rho,
                                                                          slope=sweeps[0].slope)

    moas = set(cells[MOA].dropna().astype(str))
    targets = [m for m in cfg.target_moas if m in moas]
    walks = [interpolate_to_moa(model, cells, target_moa=m, dims_per_step=cfg.dims_per_step, space=space,
                                real_images=images) for m in targets]
    if walks:
        out["panel-interpolation"] = panels.interpolation_grid(
            walks, scale_bar_um=cfg.scale_bar_um,
            title=f"DMSO → MoA, {cfg.dims_per_step} features replaced per step (cosine: origin at the DMSO cell)")
        curves = pd.concat([w.table().assign(target_moa=w.target_moa) for w in walks], ignore_index=True)
        out["panel-interpolation-cosine"] = _cosine_curves(curves)

    traj = CompoundTrajectory.fit(cells, compound=cfg.compound, features=names)
    line = traj.line(cfg.n_steps, end_concentration=cfg.end_concentration)
    out["panel-latrunculin-pca"] = panels.pca_scatter(
        traj.scores, line=line, group_means=traj.group_means, title=f"PCA: DMSO + {cfg.compound}; red: DMSO mean → {cfg.end_concentration:g} µM mean")
    real_rows = []
    for c in [0.0, *traj.concentrations]:
        labels = traj.real_examples(c, 1, seed=cfg.seed)
        real_rows.append(("DMSO" if c == 0 else f"{c:g} µM", np.asarray(images[_positions(cells, labels)])))
    out["panel-latrunculin-line"] = panels.trajectory_panel(
        real_rows, line, model.generate(line[names], **drawn(model)), scale_bar_um=cfg.scale_bar_um,
        title=f"{cfg.compound}: real cells per dose (top) and images generated along the DMSO → "
              f"{cfg.end_concentration:g} µM line (bottom)")
    return out


def representative_cell(model, dmso: pd.DataFrame, space, *, max_tries: int = 25) -> pd.Series:
    """The DMSO cell nearest the DMSO mean whose generated image segments (else the nearest).

    Cells are tried in order of distance to the mean (normalised space); the first whose
    generated crop `cp2image.features.measure` can segment is returned.
    """
    from cp2image.features import measure

    norm = space.transform(dmso)
    order = np.argsort(((norm - norm.mean(axis=0)) ** 2).sum(axis=1), kind="stable")[:max_tries]
    images = model.generate(dmso.iloc[order][list(model.feature_names)], **drawn(model))
    failed = measure(images)[FAILED_COLUMN].to_numpy(bool)
    ok = np.flatnonzero(~failed)
    if ok.size == 0:
        log.warning("none of the %d DMSO cells nearest the mean gives a segmentable image; using the nearest", len(order))
        return dmso.iloc[order[0]]
    log.info("representative DMSO cell: %s (rank %d by distance to the DMSO mean)", dmso.index[order[ok[0]]], ok[0])
    return dmso.iloc[order[ok[0]]]


def _cosine_curves(table: pd.DataFrame) -> panels.Panel:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for moa, g in table.groupby("target_moa", sort=False):
        ax.plot(g["step"], g["cosine"], marker="o", label=moa)
    ax.set_xlabel("step")
    ax.set_ylabel("cosine similarity to target")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7, frameon=False)
    return panels.Panel(fig, table[["target_moa", "step", "n_replaced", "cosine", "cosine_uncentred"]], kind="chart")


def write_example_panels(built: dict[str, panels.Panel], out_dir: str | Path, *,
                         formats: tuple[str, ...] = ("png", "svg", "csv"), dpi: int = 150) -> list[Path]:
    """Write every panel in every format atomically; returns the paths."""
    paths = []
    for name, panel in built.items():
        for fmt in formats:
            paths.append(export.save(panel, Path(out_dir) / f"{name}.{fmt}", dpi=dpi))
    return paths


def dose_line_response(model, cells: pd.DataFrame, *, config: ExampleConfig | None = None) -> LineResponse:
    """The latrunculin-line panel's generated images measured back against the line's request."""
    return dose_line_measured(model, cells, config=config)[0]


def dose_line_measured(model, cells: pd.DataFrame, images=None, *, config: ExampleConfig | None = None
                       ) -> tuple[LineResponse, pd.DataFrame]:
    """(the line's measured-back response, actin puncta per generated crop along the line).

    Why the puncta: latrunculin B's phenotype is F-actin broken into small spots, texture that
    CellProfiler's mean features barely register, so the feature response can look fine while the
    pictures lack it. With `images` (the dataset's crops, row-aligned with `cells`) the table also
    holds the mean puncta per real crop of the line's end dose, the number the last step should reach.
    """
    from cp2image.evaluation.image_quality import count_puncta
    from cp2image.features import measure

    cfg = config or ExampleConfig()
    names = list(model.feature_names)
    traj = CompoundTrajectory.fit(cells, compound=cfg.compound, features=names)
    requested = traj.line(cfg.n_steps, end_concentration=cfg.end_concentration)[names].reset_index(drop=True)
    generated = model.generate(requested, **drawn(model))
    response = line_response(requested, measure(generated), cells.loc[cells[COMPOUND] == "DMSO", names])
    puncta = pd.DataFrame({"step": np.arange(len(generated)), "generated_puncta": count_puncta(generated)})
    if images is not None:
        end = np.flatnonzero(((cells[COMPOUND] == cfg.compound)
                              & np.isclose(cells[CONCENTRATION].astype(float), cfg.end_concentration)).to_numpy())
        puncta["real_end_dose_puncta"] = float(count_puncta(np.asarray(images[end])).mean()) if len(end) else np.nan
    return response, puncta

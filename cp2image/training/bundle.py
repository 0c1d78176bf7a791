"""Turn a finished training run into a shipped model: weights, config, card, figure, metrics.

    cp2image bundle --run RUN --data DS --target assets/models/NAME --title "..." \
        --card-text card.json [--figure docs/figures/generated-vs-original.png] [--evaluation EVAL_DIR]

The bundle holds only what generation needs (the generator's `model.safetensors` and
`config.json` with features, normalisation and provenance) plus a model card; the
discriminator and optimiser states stay in the run's checkpoint. Held-out metrics are
the evaluation's own files (`cp2image evaluate --out EVAL_DIR`), copied to
`TARGET/evaluation/` and summarised in the card; bundling measures nothing itself, so
there is one result format.
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cp2image.data.columns import COMPOUND
from cp2image.data.dataset import Dataset, open_dataset
from cp2image.models.cp2image import CP2Image

log = logging.getLogger(__name__)


@dataclass
class HeldOut:
    """Held-out cells with complete features, their original and generated images."""

    cells: pd.DataFrame
    original: np.ndarray  # uint8 (n, 3, H, W)
    generated: np.ndarray  # uint8 (n, 3, H, W)


def held_out_cells(model: CP2Image, dataset: Dataset, *, split: str = "test", n: int | None = None,
                   seed: int = 0) -> HeldOut:
    """Cells of `split` whose model features are all finite; optionally a seeded sample of n."""
    rows = dataset.split_indices(split) if split != "all" else np.arange(len(dataset))
    values = dataset.cells[model.feature_names].iloc[rows].to_numpy(dtype=np.float64)
    rows = rows[np.isfinite(values).all(axis=1)]
    if n is not None and n < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=n, replace=False))
    cells = dataset.cells.iloc[rows].reset_index(drop=True)
    return HeldOut(cells=cells, original=np.asarray(dataset.images[rows]), generated=model.generate(cells))


def comparison_figure(held: HeldOut, path: Path, *, title: str, n: int = 10) -> Path:
    """Original (top) vs generated (bottom) for n held-out cells, captioned by compound."""
    from cp2image.analysis import export, panels

    pick = np.linspace(0, len(held.cells) - 1, num=min(n, len(held.cells))).round().astype(int)
    compounds = held.cells.get(COMPOUND, pd.Series(["?"] * len(held.cells)))
    captions = [str(compounds.iloc[i])[:14] for i in pick]
    panel = panels.image_grid([held.original[pick], held.generated[pick]], captions=[captions, captions],
                              row_labels=["original", "generated"], title=title, scale_bar_um=10.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(export.to_png(panel, dpi=150))
    return path


def evaluation_summary(evaluation_dir: Path) -> dict[str, str]:
    """Card lines from an evaluation folder's metrics.json (written by `cp2image evaluate`)."""
    path = Path(evaluation_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.json in {evaluation_dir}; run `cp2image evaluate --out {evaluation_dir}` first")
    metrics = json.loads(path.read_text())
    corr = metrics.get("correlation") or {}
    if not corr.get("available"):
        return {}
    split = (metrics.get("dataset") or {}).get("split", "?")
    return {
        f"Feature correlation on held-out split `{split}` ({corr['n_cells']} cells, "
        f"{corr['n_defined']} features with defined r)":
            f"{corr['fraction_above']:.1%} of features have Pearson r > {corr.get('threshold', 0.5):g}; "
            f"median r = {corr['median_r']:.3f}",
        "Best-preserved features": ", ".join(f"{t['feature']} ({t['pearson_r']:.2f})" for t in corr.get("top", [])[:5]),
        "Per-feature table": "`evaluation/correlation.csv` (cp2image evaluate)",
    }


def model_card(model: CP2Image, *, title: str, description: str, intended_use: str, limitations: str,
               metrics: dict[str, Any] | None = None, figure: str | None = None) -> str:
    """Markdown model card with Hub front matter, filled from the config's provenance."""
    prov = model.config.provenance
    cfg = prov.get("train_config", {})
    losses = prov.get("final_losses", {})
    loss_text = ", ".join(f"{k} = {v:.4g}" for k, v in losses.items()
                          if not k.startswith(("gamma", "hidden_")))
    n_params = sum(p.numel() for p in model.parameters())
    lines = [
        "---", "library_name: cp2image", "license: mit",
        "tags:", "- cell-painting", "- cellprofiler", "- image-generation", "- bbbc021", "---", "",
        f"# {title}", "", description, "",
        "## Model", "",
        f"- CP2Image generator (paper section 3): {model.config.n_features} CellProfiler features → dense → "
        f"4 × (conv {model.config.kernel_size}×{model.config.kernel_size} + batch norm + LeakyReLU + up-sampling) "
        f"→ {len(model.channels)}×{model.image_size}×{model.image_size} ({', '.join(model.channels)}).",
        f"- Base filters {model.config.base_filters}; generator parameters: {n_params:,} "
        "(only the generator is bundled; the discriminator was used for training only).",
        "- Inputs: raw CellProfiler measurements matched **by name** (`model.feature_names`), standardised "
        "with the stored training mean/scale, clipped to ±"
        f"{model.config.clip_sigma:g} SD with a warning.",
        "- Output: uint8 (N, 3, H, W), per-image-max-normalised intensities (the training crops' convention).",
        "", "## Training", "",
        f"- Data: `{prov.get('dataset', '?')}` — split `{prov.get('training_split', '?')}`, "
        f"{json.dumps(prov.get('training_cells', {}))}.",
        f"- Dataset provenance: `{json.dumps(prov.get('dataset_provenance', {}))[:400]}`",
        f"- Command: `{prov.get('command', '?')}`",
        f"- Steps: {prov.get('steps', '?')} × batch {prov.get('batch_size', '?')}; Adam lr {cfg.get('lr', '?')}; "
        f"γ_i = {cfg.get('gamma')} after delays {cfg.get('gamma_delay')} with ramps {cfg.get('gamma_ramp')}; "
        f"EMA decay {cfg.get('ema_decay')}.",
        f"- Wall time: {prov.get('wall_seconds', '?')} s on {prov.get('platform', '?')} "
        f"(torch {prov.get('torch', '?')}, CPU, {cfg.get('num_threads') or 'default'} thread(s), shared machine).",
        f"- Final training losses (mean over the last logging interval): {loss_text}.",
        f"- Date: {prov.get('date', '?')}.",
    ]
    if isinstance(prov.get("warm_start"), dict):
        start = prov["warm_start"]
        lines.append(f"- Warm start: `{start.get('source', '?')}` ({start.get('steps', '?')} steps, "
                     f"{start.get('wall_seconds', '?')} s before this run); in all {prov.get('total_steps', '?')} "
                     f"steps, {prov.get('total_wall_seconds', '?')} s.")
    if metrics:
        lines += ["", "## Evaluation", ""]
        lines += [f"- {k}: {v}" for k, v in metrics.items()]
    if figure:
        lines += ["", f"![original vs generated]({figure})"]
    lines += ["", "## Intended use", "", intended_use, "", "## Limitations", "", limitations, "",
              "## How to use", "", "```python", "from cp2image.models import CP2Image",
              "model = CP2Image.from_pretrained(\"<this folder or Hub repo>\")",
              "images = model.generate(cells)  # DataFrame with model.feature_names columns → uint8 (N, 3, H, W)",
              "```", ""]
    return "\n".join(lines)


def write_bundle(run_model_dir: Path, target: Path, card: str) -> Path:
    """Copy the exported generator (config.json + model.safetensors) and the card into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(run_model_dir / name, target / name)
    (target / "README.md").write_text(card)
    CP2Image.from_pretrained(target)  # the bundle must load strictly
    return target


@dataclass
class BundleConfig:
    """What `cp2image bundle` reads and writes."""

    run: Path  # training run folder (its `model/` is the exported generator)
    data: Path  # dataset with the held-out split (for the figure)
    target: Path  # bundle folder to write
    title: str
    card_text: dict[str, Any] = field(default_factory=dict)  # description / intended_use / limitations (+ figure_*)
    figure: Path | None = None  # original-vs-generated figure to write
    evaluation: Path | None = None  # `cp2image evaluate` output to copy into TARGET/evaluation and cite
    split: str = "test"


def bundle_run(config: BundleConfig) -> Path:
    """Figure, card and strict-loading bundle of a finished run; returns the bundle folder."""
    text = config.card_text
    missing = [k for k in ("description", "intended_use", "limitations") if k not in text]
    if missing:
        raise ValueError(f"card text lacks {missing}; give a JSON object with description, intended_use, limitations")
    model = CP2Image.from_pretrained(config.run / "model")
    figure_rel = None
    if config.figure:
        held = held_out_cells(model, open_dataset(config.data), split=config.split, n=400, seed=0)
        comparison_figure(held, config.figure, title=text.get("figure_title", config.title))
        figure_rel = text.get("figure_link")
    metrics: dict[str, Any] = {}
    if config.evaluation is not None:
        metrics = evaluation_summary(config.evaluation)
        if Path(config.evaluation).resolve() != (config.target / "evaluation").resolve():
            shutil.copytree(config.evaluation, config.target / "evaluation", dirs_exist_ok=True)
    metrics.update(text.get("extra_metrics", {}))
    card = model_card(model, title=config.title, description=text["description"],
                      intended_use=text["intended_use"], limitations=text["limitations"],
                      metrics=metrics or None, figure=figure_rel)
    write_bundle(config.run / "model", config.target, card)
    log.info("bundled %s → %s", config.run, config.target)
    return config.target

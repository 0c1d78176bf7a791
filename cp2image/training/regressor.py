"""Train the feature regressor (the consistency critic) and measure its held-out r per feature.

    cp2image regressor --data DS --out RUN/regressor [--steps 3000]

The regressor learns image → standardised CellProfiler features on the training
split; its Pearson r per feature on the "val" split is stored in its config and
written to `heldout_r.csv`, because a critic is only worth using on the features it
can actually see (the generator's consistency loss skips the others).

Angular features (`cp2image.analysis.domain.circular_period`) are learnt as unit
vectors on their period and their held-out r is the circular correlation of the
angles on that period (a near-vertical nucleus at +89° and one at −89° agree).
"""
from __future__ import annotations

import csv
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from cp2image.analysis.domain import circular_period
from cp2image.data.columns import SPLIT
from cp2image.data.dataset import open_dataset
from cp2image.models.regressor import FeatureRegressor, RegressorConfig
from cp2image.training.data import FeatureTable, prepare_features, training_rows

log = logging.getLogger(__name__)


@dataclass
class RegressorTrainConfig:
    """How the regressor is trained (saved in its provenance)."""

    steps: int = 3000  # Adam steps
    batch_size: int = 64
    lr: float = 1e-3  # Adam, cosine-decayed to 0 over `steps`
    weight_decay: float = 1e-4
    widths: list[int] | None = None  # None → RegressorConfig's default
    split: str = "train"  # rows trained on
    heldout_split: str = "val"  # rows the per-feature r is measured on
    max_nonfinite_fraction: float = 0.05
    seed: int = 0
    num_threads: int = 0  # 0 → torch's default
    progress: bool = True
    init_from: str | None = None  # start from another regressor folder (same features and widths)
    # a CP2Image folder: its own images of the training requests (+ coupled edits), labelled by measuring
    # them, join the training set, so the critic reads generated images as measurement does
    # (cp2image.training.generated_views)
    generated_by: str | None = None
    generated_edits: int = 1  # coupled-edit views per training request (with generated_by)
    generated_refined: bool = False  # also the model's refined image of each request (its folder's critic)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if int(self.generated_edits) < 0:
            raise ValueError(f"generated_edits must be ≥ 0, got {self.generated_edits}")


def pearson_per_column(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each column of a against the same column of b; NaN where either is constant."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denom = np.sqrt((a ** 2).sum(axis=0) * (b ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a * b).sum(axis=0) / denom, np.nan)


def heldout_correlation(pred: np.ndarray, truth: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                        periods: list[float]) -> np.ndarray:
    """Per-feature r of standardised predictions against truth: Pearson, or circular r for angular features."""
    from cp2image.evaluation.circular import circular_r  # here: the evaluation package is slow to import

    r = pearson_per_column(pred, truth)
    for i, period in enumerate(periods):
        if period > 0:
            r[i] = circular_r(pred[:, i] * scale[i] + mean[i], truth[:, i] * scale[i] + mean[i], period)
    return r


@torch.no_grad()
def predict(model: FeatureRegressor, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """uint8 (N, C, H, W) → standardised predictions (N, p), eval mode (angles decoded onto their period)."""
    was = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).float().div_(255)
        out.append(model.decode(model(x)).numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, model.config.n_features), np.float32)


def load_regressor_weights(model: FeatureRegressor, source: FeatureRegressor) -> None:
    """Copy `source`'s weights into `model` (same features and widths).

    A source whose features were all linear (a regressor from before angular outputs)
    still fits: everything but the last layer is copied, and in the last layer the rows
    of the readout columns both share; the new angular sine rows keep their fresh init.
    """
    state = source.state_dict()
    if list(source.config.periods) == list(model.config.periods):
        model.load_state_dict(state)
        return
    last = f"head.{len(model.head) - 1}"
    p = model.config.n_features
    shared = [i for i in range(p) if i not in set(model.config.angular) and i not in set(source.config.angular)]
    target = model.state_dict()
    for key in (f"{last}.weight", f"{last}.bias"):
        rows = target[key].clone()
        rows[shared] = state[key][shared]
        state[key] = rows
    model.load_state_dict(state)


def _standardised_views(views, table: FeatureTable, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, measured targets standardised like `table`) of the generated views with every target finite."""
    missing = [n for n in table.names if n not in views.measured.columns]
    if missing:
        raise ValueError(f"{source}: measurement does not produce feature(s) {missing[:5]} the regressor "
                         "predicts, so generated views cannot be labelled")
    values = (views.measured[table.names].to_numpy(dtype=np.float64) - table.mean) / table.scale
    keep = np.isfinite(values).all(axis=1)
    if not keep.all():
        log.info("%s: %d of %d generated views have non-finite measurements (failed segmentation); dropped",
                 source, int((~keep).sum()), len(keep))
    if not keep.any():
        raise ValueError(f"{source}: measurement failed on every generated view ({len(keep)}), so none can "
                         "label the critic; is this a trained model of this dataset?")
    return views.images[keep], values[keep].astype(np.float32)


def _load_generator(dataset, config: RegressorTrainConfig):
    """`config.generated_by` as a CP2Image, checked against the dataset before any training starts."""
    from cp2image.models.cp2image import CP2Image

    generator = CP2Image.from_pretrained(config.generated_by)
    missing = [n for n in generator.feature_names if n not in dataset.cells.columns]
    if missing:
        raise ValueError(f"generated_by {config.generated_by}: the model needs feature(s) {missing[:5]} that "
                         f"{dataset.path} does not have")
    size = (len(generator.config.channels), generator.image_size, generator.image_size)
    if tuple(dataset.images.shape[1:]) != size:
        raise ValueError(f"generated_by {config.generated_by}: the model draws {size} crops, the dataset holds "
                         f"{tuple(dataset.images.shape[1:])}; the critic needs one crop shape")
    return generator


def _generated_views(generator, dataset, rows: np.ndarray, config: RegressorTrainConfig, table: FeatureTable,
                     *, training: bool) -> tuple[np.ndarray, np.ndarray]:
    """Training views (requests, edits, refined as configured), or held-out ones (the requests as drawn)."""
    from cp2image.training.generated_views import GeneratedViewsConfig, generated_views

    views = generated_views(generator, dataset.cells.iloc[rows],
                            GeneratedViewsConfig(edits_per_request=int(config.generated_edits) if training else 0,
                                                 seed=config.seed, refined=training and config.generated_refined),
                            progress=config.progress)
    return _standardised_views(views, table, str(config.generated_by))


def train_regressor(data: str | Path, out: str | Path, config: RegressorTrainConfig) -> FeatureRegressor:
    """Fit on `config.split`, measure r on `config.heldout_split`, save to `out` (config + safetensors)."""
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    dataset = open_dataset(data)
    rows = training_rows(dataset, config.split)
    table = prepare_features(dataset, rows, max_nonfinite_fraction=config.max_nonfinite_fraction)
    images = np.asarray(dataset.images[table.rows])  # (n, C, H, W) uint8; a few hundred MB at most
    targets = table.standardised
    n_real = len(images)
    generator = _load_generator(dataset, config) if config.generated_by else None
    if generator is not None:
        gen_images, gen_targets = _generated_views(generator, dataset, table.rows, config, table, training=True)
        images = np.concatenate([images, gen_images])
        targets = np.concatenate([targets, gen_targets.astype(targets.dtype)])
        log.info("training on %d real crops + %d generated views of %s", n_real, len(gen_images),
                 config.generated_by)
    targets = torch.from_numpy(targets)

    held = dataset.split_indices(config.heldout_split) if SPLIT in dataset.cells.columns else np.array([])
    held_values = dataset.cells[table.names].iloc[held].to_numpy(dtype=np.float64) if len(held) else np.zeros((0, 0))
    keep = np.isfinite(held_values).all(axis=1) if len(held) else np.array([], bool)
    held, held_values = held[keep], held_values[keep]
    if len(held) < 3:
        raise ValueError(f"{data}: need ≥ 3 complete cells in split {config.heldout_split!r} to measure the "
                         f"regressor's held-out r, found {len(held)}")

    torch.manual_seed(config.seed)
    kwargs = {"widths": list(config.widths)} if config.widths else {}
    model = FeatureRegressor(RegressorConfig(
        feature_names=table.names, feature_mean=table.mean.tolist(), feature_scale=table.scale.tolist(),
        image_size=int(images.shape[-1]), in_channels=int(images.shape[1]),
        periods=[circular_period(n) or 0.0 for n in table.names], **kwargs))
    if config.init_from:
        source = FeatureRegressor.from_pretrained(config.init_from)
        if source.config.feature_names != table.names:
            raise ValueError(f"init_from {config.init_from}: regressor predicts other features than this dataset gives")
        try:
            load_regressor_weights(model, source)
        except RuntimeError as err:
            raise ValueError(f"init_from {config.init_from}: architecture differs ({err})") from err
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps)
    rng = np.random.default_rng(config.seed)
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(range(config.steps), disable=not config.progress, desc="regressor", dynamic_ncols=True)
    running = None
    for step in bar:
        pick = np.sort(rng.choice(len(images), size=min(config.batch_size, len(images)), replace=False))
        x = torch.from_numpy(images[pick]).float().div_(255)  # (b, C, H, W)
        loss = F.mse_loss(model(x), model.encode(targets[pick]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{running:.3f}")
            log.info("regressor step %d loss %.4f", step, running)
    wall = time.perf_counter() - t0

    truth = ((held_values - table.mean) / table.scale).astype(np.float32)
    pred = predict(model, np.asarray(dataset.images[held]))
    r = heldout_correlation(pred, truth, table.mean, table.scale, model.config.periods)
    model.config.heldout_r = [float(v) if np.isfinite(v) else 0.0 for v in r]
    model.config.provenance = {
        "dataset": str(data), "training_cells": int(len(table.rows)), "heldout_split": config.heldout_split,
        "heldout_cells": int(len(held)), "wall_seconds": round(wall, 1), "train_config": asdict(config),
        "final_loss": running,
    }
    r_generated = None
    if generator is not None:
        # the same held-out cells drawn by the generator: does the critic read generated images as measured?
        held_images, held_truth = _generated_views(generator, dataset, held, config, table, training=False)
        r_generated = heldout_correlation(predict(model, held_images), held_truth, table.mean, table.scale,
                                          model.config.periods)
        model.config.provenance.update({
            "generated_views": int(len(images) - n_real),
            "heldout_generated_views": int(len(held_images)),
            "heldout_r_generated_median": float(np.nanmedian(r_generated)),
        })
    out = Path(out)
    model.eval()
    model.save_pretrained(out)
    with open(out / "heldout_r.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        if r_generated is None:
            writer.writerow(["feature", "heldout_r"])
            writer.writerows(zip(table.names, model.config.heldout_r))
        else:  # heldout_r: on the held-out crops; heldout_r_generated: on the generator's images of them
            writer.writerow(["feature", "heldout_r", "heldout_r_generated"])
            writer.writerows(zip(table.names, model.config.heldout_r, r_generated.tolist()))
    finite = r[np.isfinite(r)]
    log.info("regressor: %d features, held-out median r %.3f, %.1f%% with r > 0.8, %.0f s",
             len(r), float(np.median(finite)), 100 * float(np.mean(finite > 0.8)), wall)
    return model

"""The training loop: data → objective steps → logs, grids, checkpoints → exported model.

Run layout (`out_dir`):
    checkpoint.safetensors   latest atomic checkpoint (resume with `resume=True`)
    checkpoints/step_XXXXXXX.safetensors   every checkpoint, with `keep_checkpoints` (pick a step by validation)
    metrics.csv              per-interval losses, samples/s
    validation.csv           pixel MSE on up to 256 "val" cells at every grid step (if a val split exists)
    grids/step_XXXXXXX.png   originals (top) vs generated (bottom), fixed cells
    grid_latest.png          the most recent grid
    features.npy             standardised training features (memory-mapped by workers)
    train_config.json        the resolved TrainConfig
    model/                   final `save_pretrained` export (config.json + model.safetensors)
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from cp2image.data.dataset import Dataset, DatasetError, open_dataset
from cp2image.models.cp2image import CP2ImageConfig
from cp2image.models.lsgan import LSGANConfig
from cp2image.models.vae import VAEConfig
from cp2image.training import checkpoint as ckpt
from cp2image.training import monitor, runtime as rt_mod
from cp2image.training import state as state_mod
from cp2image.training.config import TrainConfig
from cp2image.training.data import (CellBatches, FeatureTable, PairedSampler, StepSampler, balancing_labels,
                                    class_keys, class_weights, grid_rows, images_file, prepare_features,
                                    summarise_split, training_rows, validation_batch, write_feature_matrix)
from cp2image.training.objectives import OBJECTIVES, Objective

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.safetensors"
# Options that may change when resuming (they do not alter the maths of finished steps).
RESUMABLE_CHANGES = {"steps", "log_every", "grid_every", "checkpoint_every", "progress", "num_workers",
                     "grid_cells", "device", "compile", "amp", "channels_last", "sync_batchnorm",
                     "num_threads", "keep_checkpoints"}


@dataclass
class TrainResult:
    steps: int
    wall_seconds: float  # this invocation
    total_wall_seconds: float  # across resumes
    samples_per_second: float  # global samples per second in this invocation
    final_losses: dict[str, float] = field(default_factory=dict)
    model_dir: Path | None = None
    grid_path: Path | None = None


class _Interval:
    """Running sums of the step losses between two log lines."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.count = 0
        self.start = time.perf_counter()

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach().float()
            self.counts[k] = self.counts.get(k, 0) + 1
        self.count += 1

    def means(self) -> dict[str, torch.Tensor]:
        return {k: v / self.counts[k] for k, v in self.sums.items()}


@dataclass
class _Session:
    """What set-up hands to the loop and the export: data, networks, batches and logs of one invocation."""

    dataset: Dataset
    table: FeatureTable
    channels: list[str]
    objective: Objective
    generator: nn.Module
    ema: AveragedModel | None
    loader: DataLoader
    grid_batch: dict
    val_batch: dict | None
    metrics: monitor.MetricsLog | None
    val_log: monitor.MetricsLog | None
    start_step: int
    previous_wall: float
    last: dict[str, float]  # the latest logged losses (from the checkpoint when resuming)


class Trainer:
    """Train one model kind on a dataset directory; see module docstring for outputs."""

    def __init__(self, config: TrainConfig, data: str | Path, out_dir: str | Path, *, resume: bool = False,
                 command: str | None = None) -> None:
        self.config, self.data_path, self.out = config, Path(data), Path(out_dir)
        self.resume, self.command = resume, command or " ".join(sys.argv)
        self.ckpt_path = self.out / CHECKPOINT
        self.warm_start: dict[str, Any] | None = None  # what init_from started from (kept across resumes)
        if self.ckpt_path.exists() and not resume:
            raise FileExistsError(f"{self.out} already holds a checkpoint; pass --resume or choose another --out")

    # ------------------------------------------------------------------ set-up
    def _load_checkpoint(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        if not (self.resume and self.ckpt_path.exists()):
            if self.resume:
                log.info("no checkpoint in %s; starting from step 0", self.out)
            return None
        tensors, state = ckpt.load_checkpoint(self.ckpt_path)
        saved = TrainConfig.from_dict(state["config"])
        changed = {k for k, v in saved.to_dict().items() if getattr(self.config, k) != v} - RESUMABLE_CHANGES
        if changed:
            raise ValueError(
                f"--resume with a different config: {sorted(changed)} differ from the checkpoint in {self.out}; "
                "only steps/monitoring options may change"
            )
        return tensors, state

    def _model_config(self, table: FeatureTable, image_size: int, channels: list[str]):
        c = self.config
        common = dict(channels=channels, image_size=image_size, base_filters=c.base_filters,
                      kernel_size=c.kernel_size, batch_norm=c.batch_norm, upsample_mode=c.upsample_mode)
        if c.model == "cp2image":
            return CP2ImageConfig(
                feature_names=table.names, feature_mean=table.mean.tolist(), feature_scale=table.scale.tolist(),
                generator_channel_mults=list(c.generator_channel_mults),
                discriminator_channel_mults=list(c.discriminator_channel_mults), padding_mode=c.padding_mode,
                **common)
        if c.model in ("vae", "vaeplus"):
            return VAEConfig(latent_dim=c.latent_dim, encoder_channel_mults=list(c.discriminator_channel_mults),
                             decoder_channel_mults=list(c.generator_channel_mults), **common)
        return LSGANConfig(latent_dim=c.latent_dim, generator_channel_mults=list(c.generator_channel_mults), **common)

    def _wrapper(self, runtime: rt_mod.Runtime):
        def wrap(net: nn.Module) -> nn.Module:
            if runtime.distributed:
                if self.config.sync_batchnorm and runtime.device.type == "cuda":
                    net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
                ids = [runtime.device.index] if runtime.device.type == "cuda" else None
                net = DistributedDataParallel(net, device_ids=ids)
            if self.config.compile:
                net = torch.compile(net)
            return net
        return wrap

    # ------------------------------------------------------------------ state
    def _state_tensors(self, objective: Objective, ema: AveragedModel | None) -> tuple[dict, dict]:
        return state_mod.state_tensors(objective, ema)

    # ------------------------------------------------------------------ run
    def run(self) -> TrainResult:
        c = self.config
        if c.num_threads > 0:
            torch.set_num_threads(c.num_threads)
        runtime = rt_mod.start(device=c.device, amp=c.amp, channels_last=c.channels_last)
        try:
            return self._run(runtime)
        finally:
            rt_mod.stop(runtime)

    def _run(self, runtime: rt_mod.Runtime) -> TrainResult:
        """Set up, loop, export: the three phases of one invocation (a resumed run repeats all three)."""
        session = self._set_up(runtime)
        t0 = time.perf_counter()
        step, last, grid_path = self._loop(session, runtime, t0)
        wall = time.perf_counter() - t0
        done = step - session.start_step
        result = TrainResult(steps=step, wall_seconds=wall, total_wall_seconds=session.previous_wall + wall,
                             samples_per_second=done * self.config.batch_size / wall if done else 0.0,
                             final_losses=last, grid_path=grid_path)
        if runtime.is_main:
            result.model_dir = self._export(session.objective, session.ema, session.dataset, session.table, result)
            for log_file in (session.metrics, session.val_log):
                if log_file is not None:
                    log_file.close()
        runtime.barrier()
        return result

    # ------------------------------------------------------------------ set-up
    def _set_up(self, runtime: rt_mod.Runtime) -> _Session:
        """Checkpoint, training table, networks (restored or initialised), batches and logs."""
        c = self.config
        loaded = self._load_checkpoint()
        start_step = int(loaded[1]["step"]) if loaded else 0
        previous_wall = float(loaded[1].get("total_wall_seconds", 0.0)) if loaded else 0.0
        if start_step >= c.steps:
            log.info("checkpoint already at step %d ≥ steps %d; exporting only", start_step, c.steps)
        dataset, table, features_path = self._training_table(runtime, loaded)
        channels = dataset.channels
        objective, generator, ema = self._networks(runtime, table, int(dataset.images.shape[-1]), channels, loaded)

        weights = self._sampling_weights(dataset, table)
        sampler = PairedSampler(*(
            StepSampler(len(table.rows), global_batch=c.batch_size, start_step=start_step, end_step=c.steps,
                        seed=c.seed, stream=stream, rank=runtime.rank, world_size=runtime.world_size,
                        weights=weights)
            for stream in (0, 1)
        ))
        batches = CellBatches(images_file(dataset), table.rows, features_path)
        loader = DataLoader(batches, sampler=sampler, batch_size=None, num_workers=c.num_workers,
                            pin_memory=runtime.device.type == "cuda",
                            persistent_workers=False)
        grid_pos = grid_rows(table, c.grid_cells, seed=c.seed)
        grid_batch = batches[(grid_pos, grid_pos)]
        val_batch = (validation_batch(dataset, table, seed=c.seed) if runtime.is_main and c.split != "all"
                     else None)
        resume_step = start_step if loaded else None
        val_log = (monitor.MetricsLog(self.out / "validation.csv", resume_step=resume_step)
                   if val_batch is not None else None)
        metrics = (monitor.MetricsLog(self.out / "metrics.csv", resume_step=resume_step,
                                      tensorboard_dir=self.out / "tensorboard")
                   if runtime.is_main else None)
        log.info("training %s on %d cells × %d features (%s, world %d, batch %d/process) steps %d→%d",
                 c.model, len(table.rows), len(table.names), runtime.device, runtime.world_size,
                 c.batch_size // runtime.world_size, start_step, c.steps)
        return _Session(
            dataset=dataset, table=table, channels=channels, objective=objective, generator=generator, ema=ema,
            loader=loader, grid_batch=grid_batch, val_batch=val_batch, metrics=metrics, val_log=val_log,
            start_step=start_step, previous_wall=previous_wall,
            last=dict(loaded[1].get("last_losses", {})) if loaded else {},
        )

    def _sampling_weights(self, dataset: Dataset, table: FeatureTable) -> np.ndarray | None:
        """Per-row draw weights for `balance_by` (None: uniform epochs). Both the generator's and the
        discriminator's real batches use them, so D sees the same class mix as G."""
        c = self.config
        if not c.balance_by:
            return None
        labels = balancing_labels(dataset.cells, table.rows, c.balance_by)
        weights = class_weights(labels, power=c.balance_power)
        share = pd.Series(weights).groupby(class_keys(labels).to_numpy()).sum()
        log.info("balance_by=%s (power %g): %d classes; expected share of a batch %s", c.balance_by,
                 c.balance_power, len(share), ", ".join(f"{k} {v:.1%}" for k, v in share.sort_values().items()))
        return weights

    def _training_table(self, runtime: rt_mod.Runtime, loaded) -> tuple[Dataset, FeatureTable, Path]:
        """The training rows' standardised features, written once to features.npy for the workers."""
        c = self.config
        dataset = open_dataset(self.data_path)
        rows = training_rows(dataset, c.split)
        if c.max_cells is not None and len(rows) > c.max_cells:
            rows = np.sort(np.random.default_rng(c.seed).choice(rows, size=c.max_cells, replace=False))
        table = prepare_features(dataset, rows, features=c.features,
                                 max_nonfinite_fraction=c.max_nonfinite_fraction)
        if loaded and c.model == "cp2image" and loaded[1].get("feature_names") != table.names:
            raise DatasetError(f"{self.data_path}: features differ from those the checkpoint was trained on")
        self.out.mkdir(parents=True, exist_ok=True)
        features_path = self.out / "features.npy"
        if runtime.is_main:
            write_feature_matrix(features_path, table.standardised)
            (self.out / "train_config.json").write_text(json.dumps(c.to_dict(), indent=2) + "\n")
        runtime.barrier()
        return dataset, table, features_path

    def _networks(self, runtime: rt_mod.Runtime, table: FeatureTable, image_size: int, channels: list[str],
                  loaded) -> tuple[Objective, nn.Module, AveragedModel | None]:
        """The objective with its networks and the generator's EMA, from the checkpoint, `init_from` or the seed."""
        c = self.config
        torch.manual_seed(c.seed)
        objective = OBJECTIVES[c.model](c, runtime, self._model_config(table, image_size, channels))
        objective.finalise(self._wrapper(runtime))
        objective.prepare(table)
        generator = objective.nets[objective.generator_key]
        ema = (AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(c.ema_decay), use_buffers=True)
               if c.ema_decay > 0 else None)
        if loaded:
            state_mod.restore(objective, ema, *loaded)
            log.info("resumed from %s at step %d", self.ckpt_path, int(loaded[1]["step"]))
            self.warm_start = loaded[1].get("warm_start")
        elif c.init_from:
            self.warm_start = state_mod.initialise_from(objective, ema, Path(c.init_from), checkpoint_name=CHECKPOINT)
        return objective, generator, ema

    # ------------------------------------------------------------------ loop
    def _loop(self, s: _Session, runtime: rt_mod.Runtime, t0: float) -> tuple[int, dict[str, float], Path | None]:
        """Objective steps with EMA, interval logs, grids + validation MSE, checkpoints; (step, losses, grid)."""
        c = self.config
        interval = _Interval()
        last, grid_path, step = s.last, None, s.start_step
        bar = tqdm(total=c.steps, initial=s.start_step, disable=not (c.progress and runtime.is_main),
                   desc=f"train {c.model}", dynamic_ncols=True)
        for step_batch in s.loader:
            for net in s.objective.nets.values():
                net.train()
            values = s.objective.step(step_batch, step)
            if s.ema is not None:
                s.ema.update_parameters(s.generator)
            step += 1
            bar.update(1)
            interval.add(values)
            if step % c.log_every == 0 or step == c.steps:
                last = self._log_interval(interval, runtime, step, s.metrics)
                bar.set_postfix({k: f"{v:.4f}" for k, v in last.items() if k in ("mse", "loss_g", "loss_d")})
            if runtime.is_main and (step % c.grid_every == 0 or step == c.steps):
                grid_path = self._grid(s.objective, s.ema, s.grid_batch, step, s.channels)
                if s.val_log is not None:
                    s.val_log.write(step, {"val_mse": self._preview_mse(s.objective, s.ema, s.val_batch),
                                           "val_cells": len(s.val_batch["images"])})
            if step % c.checkpoint_every == 0 or step == c.steps:
                self._checkpoint(s.objective, s.ema, runtime, step, s.table, last,
                                 s.previous_wall + time.perf_counter() - t0)
        bar.close()
        return step, last, grid_path

    def _log_interval(self, interval: _Interval, runtime: rt_mod.Runtime, step: int,
                      metrics: monitor.MetricsLog | None) -> dict[str, float]:
        """Mean losses of the interval over steps and ranks, written to metrics.csv; starts a new interval."""
        elapsed = time.perf_counter() - interval.start
        last = self._mean_over_ranks(interval.means(), runtime)
        if not all(np.isfinite(v) for v in last.values()):
            raise FloatingPointError(f"non-finite loss at step {step}: {last}; lower the learning rate")
        if metrics is not None:
            metrics.write(step, {**last, "samples_per_s": interval.count * self.config.batch_size / max(elapsed, 1e-9)})
        interval.reset()
        return last

    @staticmethod
    def _mean_over_ranks(values: dict[str, torch.Tensor], runtime: rt_mod.Runtime) -> dict[str, float]:
        """Logged losses averaged over DDP processes (each saw a different shard of the batch)."""
        keys = sorted(values)
        stacked = torch.stack([torch.as_tensor(values[k], dtype=torch.float32) for k in keys]).to(runtime.device)
        if runtime.distributed:
            torch.distributed.all_reduce(stacked)
            stacked /= runtime.world_size
        return dict(zip(keys, stacked.cpu().tolist()))

    # ------------------------------------------------------------------ outputs
    def _export_net(self, objective: Objective, ema: AveragedModel | None) -> nn.Module:
        return ema.module if ema is not None else objective.nets[objective.generator_key]

    def _preview(self, objective: Objective, ema, batch: dict) -> np.ndarray:
        net = self._export_net(objective, ema)
        original_net = objective.nets[objective.generator_key]
        objective.nets[objective.generator_key] = net
        try:
            return objective.preview(batch)
        finally:
            objective.nets[objective.generator_key] = original_net

    def _preview_mse(self, objective: Objective, ema, batch: dict) -> float:
        """Pixel MSE (images / 255) of the exported network on held-out cells."""
        generated = self._preview(objective, ema, batch).astype(np.float32) / 255
        return float(np.mean((generated - batch["images"].numpy().astype(np.float32) / 255) ** 2))

    def _grid(self, objective: Objective, ema, grid_batch: dict, step: int, channels: list[str]) -> Path:
        generated = self._preview(objective, ema, grid_batch)
        grid = monitor.comparison_grid([grid_batch["images"].numpy(), generated])
        path = monitor.save_png(grid, self.out / "grids" / f"step_{step:07d}.png")
        monitor.save_png(grid, self.out / "grid_latest.png")
        return path

    def _checkpoint(self, objective, ema, runtime, step: int, table: FeatureTable, last: dict,
                    total_wall: float) -> None:
        if not runtime.is_main:
            runtime.barrier()
            return
        tensors, optim_meta = self._state_tensors(objective, ema)
        state = {"step": step, "config": self.config.to_dict(), "optimizers": optim_meta,
                 "feature_names": table.names, "last_losses": last, "total_wall_seconds": total_wall,
                 "warm_start": self.warm_start}
        ckpt.save_checkpoint(self.ckpt_path, tensors, state)
        if self.config.keep_checkpoints:
            kept = self.out / "checkpoints" / f"step_{step:07d}.safetensors"
            kept.parent.mkdir(parents=True, exist_ok=True)
            tmp = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
            shutil.copyfile(self.ckpt_path, tmp)
            os.replace(tmp, kept)
        runtime.barrier()

    def _export(self, objective: Objective, ema, dataset, table: FeatureTable, result: TrainResult) -> Path:
        net = self._export_net(objective, ema)
        c = self.config
        provenance = {
            "dataset": str(self.data_path),
            "dataset_provenance": dataset.meta.get("provenance", {}),
            "training_split": c.split,
            "training_cells": summarise_split(dataset.cells, table.rows),
            "model_kind": c.model,
            "steps": result.steps,
            "batch_size": c.batch_size,
            "train_config": c.to_dict(),
            "command": self.command,
            "wall_seconds": round(result.total_wall_seconds, 1),
            "final_losses": result.final_losses,
            "ema_weights": ema is not None,
            "torch": torch.__version__,
            "platform": platform.platform(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if self.warm_start:
            provenance.update(state_mod.warm_start_totals(self.warm_start, result.steps, result.total_wall_seconds))
        net.config.provenance = provenance
        if c.model == "cp2image" and (c.noise_dim or c.block_noise):
            from cp2image.training.noise_free import zero_noise_model

            net = zero_noise_model(net)  # generation feeds zero noise: export the plain generator that draws it
        out = self.out / "model"
        net.save_pretrained(out)
        log.info("exported %s to %s", type(net).__name__, out)
        return out

"""`cp2image train`: train CP2Image or a baseline on a dataset directory.

    cp2image train --data DS --model cp2image --out RUN [--config cfg.toml] [--resume]
    torchrun --nproc_per_node 4 -m cp2image train --data DS --out RUN     # DDP
"""
from __future__ import annotations

import argparse
import logging
import shlex

# flag name → TrainConfig field (flags left unset keep the config file's / default value)
_OVERRIDES = {
    "model": "model", "steps": "steps", "batch_size": "batch_size", "lr": "lr", "d_lr": "d_lr",
    "base_filters": "base_filters", "kernel_size": "kernel_size", "seed": "seed", "device": "device",
    "num_workers": "num_workers", "ema_decay": "ema_decay", "split": "split", "max_cells": "max_cells",
    "log_every": "log_every", "grid_every": "grid_every", "checkpoint_every": "checkpoint_every",
    "discriminator_start": "discriminator_start", "amp": "amp", "latent_dim": "latent_dim",
    "threads": "num_threads", "init_from": "init_from", "balance_by": "balance_by", "balance_power": "balance_power",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train CP2Image (or a VAE / VAEplus / LSGAN baseline) on a dataset",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset directory (images.npy + cells.parquet + dataset.json)")
    p.add_argument("--model", choices=("cp2image", "vae", "vaeplus", "lsgan"), default=None,
                   help="model kind (default cp2image)")
    p.add_argument("--out", required=True, help="run directory (checkpoint, metrics.csv, grids, model/)")
    p.add_argument("--config", help="TrainConfig as .json or .toml; flags override it")
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.safetensors")
    p.add_argument("--init-from", help="fine-tune: start from another run's checkpoint (weights only)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int, help="global batch (default 104, the paper's)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    p.add_argument("--d-lr", type=float, help="discriminator learning rate (default: --lr)")
    p.add_argument("--base-filters", type=int)
    p.add_argument("--kernel-size", type=int)
    p.add_argument("--latent-dim", type=int, help="VAE/LSGAN latent size")
    p.add_argument("--discriminator-start", type=int, help="first step with discriminator updates")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--amp", choices=("auto", "bf16", "off"))
    p.add_argument("--num-workers", type=int, help="DataLoader workers")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--ema-decay", type=float, help="> 0 exports an EMA of generator weights")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--split", help="training split (default train; 'all' for every row)")
    p.add_argument("--max-cells", type=int, help="train on a random subset of this many cells")
    p.add_argument("--balance-by", help="draw the classes of this metadata column evenly, e.g. moa "
                                        "(default: every cell equally often)")
    p.add_argument("--balance-power", type=float,
                   help="with --balance-by: each cell drawn with weight count(its class)^-POWER (default 1: "
                        "classes equally often; 0.5: shares in proportion to the square root of the counts)")
    p.add_argument("--log-every", type=int)
    p.add_argument("--grid-every", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar (e.g. in log files)")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="after training, push the model to this Hub repo")
    p.set_defaults(run=run)


def build_config(args: argparse.Namespace):
    from cp2image.training.config import TrainConfig

    overrides = {field: getattr(args, flag) for flag, field in _OVERRIDES.items() if getattr(args, flag) is not None}
    if args.compile:
        overrides["compile"] = True
    if args.no_progress:
        overrides["progress"] = False
    if args.config:
        return TrainConfig.from_file(args.config, **overrides)
    return TrainConfig.from_dict(overrides)


def _command_line(args: argparse.Namespace) -> str:
    """The equivalent `cp2image train ...` command, for the model's provenance."""
    parts = ["cp2image", "train", "--data", str(args.data), "--out", str(args.out)]
    if args.config:
        parts += ["--config", str(args.config)]
    for flag in _OVERRIDES:
        value = getattr(args, flag)
        if value is not None:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    parts += [f"--{name}" for name in ("compile", "no_progress", "resume") if getattr(args, name)]
    return " ".join(shlex.quote(p.replace("_", "-") if p.startswith("--") else p) for p in parts)


def run(args: argparse.Namespace) -> int:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    from cp2image.training.trainer import Trainer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.push_to_hub:
        try:
            validate_repo_id(args.push_to_hub)
        except HFValidationError as err:
            raise ValueError(f"--push-to-hub {args.push_to_hub!r} is not a valid Hub repo id ({err})") from err
    config = build_config(args)
    command = _command_line(args)
    result = Trainer(config, args.data, args.out, resume=args.resume, command=command).run()
    if result.model_dir is None:  # non-main DDP process
        return 0
    losses = ", ".join(f"{k}={v:.4g}" for k, v in result.final_losses.items() if not k.startswith("gamma"))
    print(f"trained {config.model} to step {result.steps} in {result.total_wall_seconds:.0f} s "
          f"({result.samples_per_second:.1f} samples/s this run)")
    print(f"final losses: {losses}")
    print(f"model: {result.model_dir}")
    print(f"grid:  {result.grid_path}")
    if args.push_to_hub:
        from cp2image.models.hub import MODEL_CLASSES

        model = MODEL_CLASSES[config.model].from_pretrained(result.model_dir)
        url = model.push_to_hub(args.push_to_hub)
        print(f"pushed to {url}")
    return 0

"""The training state as flat tensors (for checkpoints), and restoring or initialising networks from it.

Keys: `net.<name>.<param>` per network, `optim.<name>.*` per optimiser (see
checkpoint.flatten_optimizer), `ema.*` for the generator's moving average and
`rng.torch` / `rng.cuda`, so a resumed run continues the same random stream.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel

from cp2image.training import checkpoint as ckpt
from cp2image.training.objectives import Objective

log = logging.getLogger(__name__)


def state_tensors(objective: Objective, ema: AveragedModel | None) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, optimiser metadata) of every network, optimiser, the EMA and the RNG."""
    tensors: dict[str, torch.Tensor] = {}
    optim_meta = {}
    for name, net in objective.nets.items():
        tensors.update({f"net.{name}.{k}": v for k, v in net.state_dict().items()})
    for name, opt in objective.optimizers.items():
        t, meta = ckpt.flatten_optimizer(f"optim.{name}", opt)
        tensors.update(t)
        optim_meta[name] = meta
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    return tensors, optim_meta


def restore(objective: Objective, ema: AveragedModel | None, tensors: dict, state: dict) -> None:
    """Load what `state_tensors` saved: networks, optimisers, EMA and RNG."""
    for name, net in objective.nets.items():
        prefix = f"net.{name}."
        net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name, opt in objective.optimizers.items():
        ckpt.restore_optimizer(f"optim.{name}", opt, tensors, state["optimizers"][name])
    if ema is not None:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


# networks a run may add to its source's: they start from their fresh initialisation
OPTIONAL_NETWORKS: frozenset[str] = frozenset({"detail_discriminator"})


def _adapted(net: torch.nn.Module, state: dict[str, torch.Tensor], noise_dim: int
             ) -> tuple[dict[str, torch.Tensor], list[str], list[str], int]:
    """(`state` fitted to `net`, keys that do not fit, keys `net` keeps fresh, noise columns added as zeros).

    Three differences from the source are allowed, all for runs that add sharpening options
    (docs/generator-ablation.md): a dense layer `noise_dim` inputs wider than the source's gets
    zero noise columns, so step 0 draws the source's images exactly; block noise strengths
    (`*.noise_strength`, zero at construction) and a projection embedding (`embed.*`) the source
    lacks keep their fresh initialisation.
    """
    from cp2image.models.generator import with_noise_columns

    expected = net.state_dict()
    state = dict(state)
    added = 0
    if noise_dim:
        for key, value in state.items():
            if (key.endswith("dense.weight") and key in expected
                    and expected[key].shape[1] == value.shape[1] + noise_dim):
                state[key] = with_noise_columns(value, noise_dim)
                added = noise_dim
    fresh = [k for k in expected if k not in state and (k.startswith("embed.") or k.endswith(".noise_strength"))]
    bad = [k for k in expected if k not in fresh and (k not in state or state[k].shape != expected[k].shape)]
    if fresh:  # loaded non-strictly below, so name keys the network does not have here
        bad += sorted(set(state) - set(expected))
    return state, bad, fresh, added


def initialise_from(objective: Objective, ema: AveragedModel | None, source: Path, *,
                    checkpoint_name: str) -> dict[str, Any]:
    """Copy network weights (not optimiser state or step) from another run's checkpoint; return `warm_start`.

    The returned record (source, the steps and wall seconds that made its weights) goes into
    the checkpoint and the export's provenance, so a fine-tuned model still says how much
    training its weights hold in all, not only the fine-tune's steps.

    `source` may also be an exported model folder (config.json + model.safetensors, e.g.
    a bundled model): then only the generator is initialised and the discriminator starts
    fresh, since exported models do not carry it. A run that adds a noise input or a
    projection discriminator may start from a source without them (`_adapted`).
    """
    noise_dim = int(getattr(objective.config, "noise_dim", 0) or 0)
    if source.is_dir() and not (source / checkpoint_name).exists() and (source / "model.safetensors").exists():
        provenance = _initialise_generator_from_export(objective, ema, source, noise_dim)
        return warm_start_record(source, provenance.get("total_steps", provenance.get("steps")),
                                 provenance.get("total_wall_seconds", provenance.get("wall_seconds")))
    path = source / checkpoint_name if source.is_dir() else source
    tensors, source_state = ckpt.load_checkpoint(path)
    widened = 0
    for name, net in objective.nets.items():
        prefix = f"net.{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not state and name in OPTIONAL_NETWORKS:
            log.info("init_from %s has no %s: it starts fresh", path, name)
            continue
        state, bad, fresh, added = _adapted(net, state, noise_dim)
        if bad:
            raise ValueError(f"init_from {path}: network {name!r} does not match this config "
                             f"(e.g. {bad[:3]}); the feature list and architecture must be the same")
        net.load_state_dict(state, strict=not fresh)
        widened = max(widened, added)
    if ema is not None:
        ema.module.load_state_dict(objective.nets[objective.generator_key].state_dict())
    log.info("initialised networks from %s (noise columns added as zeros: %d)", path, widened)
    earlier = source_state.get("warm_start") or {}
    steps = int(source_state.get("step", 0)) + int(earlier.get("steps") or 0)
    wall = float(source_state.get("total_wall_seconds", 0.0)) + float(earlier.get("wall_seconds") or 0.0)
    return warm_start_record(path, steps, wall)


def warm_start_record(source: Path, steps: Any, wall_seconds: Any) -> dict[str, Any]:
    """{source, steps, wall_seconds} of the weights a run starts from (None where the source does not say)."""
    return {"source": str(source), "steps": int(steps) if isinstance(steps, (int, float)) else None,
            "wall_seconds": round(float(wall_seconds), 1) if isinstance(wall_seconds, (int, float)) else None}


def _initialise_generator_from_export(objective: Objective, ema: AveragedModel | None, source: Path,
                                      noise_dim: int = 0) -> dict[str, Any]:
    """Load the exported generator into the objective; return its config's provenance."""
    net = objective.nets[objective.generator_key]
    exported = type(net).from_pretrained(source)
    mine, theirs = getattr(net, "feature_names", None), getattr(exported, "feature_names", None)
    if mine != theirs:
        raise ValueError(f"init_from {source}: the model was trained on a different feature list than this "
                         "dataset gives; fine-tune only on data with the same features")
    state, bad, fresh, added = _adapted(net, exported.state_dict(), noise_dim)
    if bad:
        raise ValueError(f"init_from {source}: architecture differs from this config (e.g. {bad[:3]})")
    net.load_state_dict(state, strict=not fresh)
    if ema is not None:
        ema.module.load_state_dict(net.state_dict())
    log.info("initialised the generator from exported model %s (discriminator starts fresh; noise columns added as "
             "zeros: %d)", source, added)
    provenance = getattr(getattr(exported, "config", None), "provenance", None)
    return provenance if isinstance(provenance, dict) else {}


def warm_start_totals(warm_start: dict[str, Any], steps: int, wall_seconds: float) -> dict[str, Any]:
    """Provenance keys for a warm-started export: the record, and totals where the source gave its own."""
    out: dict[str, Any] = {"warm_start": warm_start}
    if warm_start.get("steps") is not None:
        out["total_steps"] = int(warm_start["steps"]) + int(steps)
    if warm_start.get("wall_seconds") is not None:
        out["total_wall_seconds"] = round(float(warm_start["wall_seconds"]) + float(wall_seconds), 1)
    return out

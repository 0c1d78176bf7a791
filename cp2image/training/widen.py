"""A trained CP2Image widened to more base filters, drawing the same images (Net2Wider).

Why: the paper's generator has 32 base filters; the bundled ones have 16, because training
32 filters from scratch does not fit a 2-core CPU. Widening lets a wider generator start
from a trained narrow one instead of from scratch: every hidden channel is copied `factor`
times, and the next layer reads each copy with 1/factor of the original weight, so the
network computes the same function (batch norm too: copies have the same batch statistics).
A small zero-sum perturbation of those next-layer weights (ε · mean |w|) keeps that sum but
gives the copies different gradients, so they can learn different things.

    python -m cp2image.training.widen assets/models/cp2image-sim runs/sim-32 --factor 2
"""
from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from cp2image.analysis.coupling import COUPLING_FILE
from cp2image.models.cp2image import CP2Image
from cp2image.models.refine import CRITIC_DIR

COPIED_ALONG = (CRITIC_DIR, COUPLING_FILE)  # a folder's parts that do not depend on the width


@dataclass(frozen=True)
class WidenConfig:
    """How to widen: `factor` copies per channel; ε, the copies' perturbation relative to mean |w|."""

    factor: int = 2
    epsilon: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.factor, int) or self.factor < 2:
            raise ValueError(f"factor must be an integer ≥ 2, got {self.factor!r}")
        if not self.epsilon >= 0:
            raise ValueError(f"epsilon must be ≥ 0, got {self.epsilon!r}")


def _repeat_out(t: torch.Tensor, factor: int, groups: int = 1) -> torch.Tensor:
    """Copies along dim 0: [c0..cC-1] repeated `factor` times (copy k of channel c at k·C + c).
    `groups` > 1 treats dim 0 as (C, groups) rows, as the dense layer's (channel, pixel) rows."""
    rows = t.reshape(-1, groups, *t.shape[1:])
    return torch.cat([rows] * factor, dim=0).reshape(-1, *t.shape[1:])


def _split_in(weight: torch.Tensor, factor: int, epsilon: float, generator: torch.Generator) -> torch.Tensor:
    """(out, in, k, k) → (out, factor·in, k, k): each copy reads w/factor plus noise that sums to zero over
    the copies (the last copy takes minus the others' sum), so the layer's output is unchanged."""
    noise = torch.randn((factor - 1, *weight.shape), generator=generator, dtype=weight.dtype)
    noise = torch.cat([noise, -noise.sum(dim=0, keepdim=True)]) * epsilon * weight.abs().mean()
    return torch.cat([weight / factor + noise[k] for k in range(factor)], dim=1)


def _norm_state(norm: nn.Module, prefix: str, factor: int) -> dict[str, torch.Tensor]:
    if isinstance(norm, nn.Identity):
        return {}
    if not isinstance(norm, nn.BatchNorm2d):
        raise ValueError(f"{prefix}: cannot widen a {type(norm).__name__}")
    state = {f"{prefix}.{n}": _repeat_out(getattr(norm, n).detach(), factor)
             for n in ("weight", "bias", "running_mean", "running_var")}
    state[f"{prefix}.num_batches_tracked"] = norm.num_batches_tracked.detach().clone()
    return state


def widen_generator_state(net: CP2Image, config: WidenConfig) -> dict[str, torch.Tensor]:
    """The generator state of `net` widened by `config.factor` (keys of `Generator.state_dict`)."""
    g, f = net.generator, config.factor
    if g.config.noise_dim or g.config.block_noise:
        raise ValueError("widen an exported model folder (no noise inputs): see cp2image.training.noise_free")
    rng = torch.Generator().manual_seed(config.seed)
    size = g.grid[1]
    state = {"dense.weight": _repeat_out(g.dense.weight.detach(), f, size * size),
             "dense.bias": _repeat_out(g.dense.bias.detach(), f, size * size)}
    state.update(_norm_state(g.dense_norm, "dense_norm", f))
    for i, block in enumerate(g.blocks):
        state[f"blocks.{i}.conv.weight"] = _repeat_out(_split_in(block.conv.weight.detach(), f, config.epsilon, rng), f)
        if block.conv.bias is not None:
            state[f"blocks.{i}.conv.bias"] = _repeat_out(block.conv.bias.detach(), f)
        state.update(_norm_state(block.norm, f"blocks.{i}.norm", f))
    state["to_image.weight"] = _split_in(g.to_image.weight.detach(), f, config.epsilon, rng)
    state["to_image.bias"] = g.to_image.bias.detach().clone()
    return state


def widen_model(net: CP2Image, config: WidenConfig = WidenConfig()) -> CP2Image:
    """A CP2Image with `factor`× the base filters drawing the images `net` draws (up to float round-off)."""
    provenance = dict(net.config.provenance)
    provenance["widened"] = {"from_base_filters": net.config.base_filters, "factor": config.factor,
                             "epsilon": config.epsilon, "seed": config.seed,
                             "how": "Net2Wider: channels copied, next-layer weights split (cp2image.training.widen)"}
    wide = CP2Image(replace(net.config, base_filters=net.config.base_filters * config.factor, provenance=provenance))
    wide.generator.load_state_dict(widen_generator_state(net, config), strict=True)
    return wide.eval()


def widen_folder(source: str | Path, target: str | Path, config: WidenConfig = WidenConfig()) -> Path:
    """Model folder → widened model folder (weights, config; its critic and feature coupling copied along)."""
    source, target = Path(source), Path(target)
    net = CP2Image.from_pretrained(str(source))
    widen_model(net, config).save_pretrained(target)
    for name in COPIED_ALONG:
        part = source / name
        if part.is_dir():
            shutil.copytree(part, target / name, dirs_exist_ok=True)
        elif part.is_file():
            shutil.copy2(part, target / name)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="exported model folder (e.g. assets/models/cp2image-sim)")
    parser.add_argument("target", help="widened model folder to write (use it as a training run's init_from)")
    parser.add_argument("--factor", type=int, default=WidenConfig.factor, help="copies per channel (2: 16 → 32 filters)")
    parser.add_argument("--epsilon", type=float, default=WidenConfig.epsilon, help="copy perturbation, × mean |w|")
    parser.add_argument("--seed", type=int, default=WidenConfig.seed)
    args = parser.parse_args(argv)
    print(widen_folder(args.source, args.target, WidenConfig(args.factor, args.epsilon, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

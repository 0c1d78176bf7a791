"""A noise-input generator exported as the plain CP2Image every loader reads: its zero-noise draw.

Why: the noise input (`TrainConfig.noise_dim`) is a training device. With the adversarial term and
the projection discriminator it lets the generator draw sharp cells instead of their pixel mean.
Generation feeds zero noise (`Generator.with_noise`), and there the dense layer's noise columns
multiply zeros, as do the block-noise strengths (`TrainConfig.block_noise`: s · 0 in every block).
Dropping them gives the same images from a generator of the paper's shape, which the strict loader,
the NumPy inference path, critic refinement and the Hub format already read.
The trainer exports such runs this way; `python -m cp2image.training.noise_free SRC DST` converts a
model folder exported before that (same weights, noise columns kept).

    python -m cp2image.training.noise_free RUN/model assets/models/NAME-candidate
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from cp2image.models.cp2image import CP2Image, CP2ImageConfig
from cp2image.models.hub_io import CONFIG_FILE, WEIGHTS_FILE

DENSE_WEIGHT = "generator.dense.weight"
NOISE_STRENGTH = ".noise_strength"  # UpBlock's block-noise scale


def zero_noise_state(state: dict[str, torch.Tensor], n_features: int) -> tuple[dict[str, torch.Tensor], int]:
    """(state with the dense layer's noise columns dropped, how many were dropped)."""
    if DENSE_WEIGHT not in state:
        raise ValueError(f"not a CP2Image state: no {DENSE_WEIGHT!r}")
    weight = state[DENSE_WEIGHT]
    noise_dim = int(weight.shape[1]) - n_features
    if noise_dim < 0:
        raise ValueError(f"{DENSE_WEIGHT} has {weight.shape[1]} input columns for {n_features} features")
    out = {k: v for k, v in state.items() if not k.endswith(NOISE_STRENGTH)}  # block noise: zero maps add nothing
    out[DENSE_WEIGHT] = weight[:, :n_features].clone()
    return out, noise_dim


def _plain_model(config: CP2ImageConfig, state: dict[str, torch.Tensor]) -> CP2Image:
    """The plain CP2Image of `state` with its noise columns dropped; provenance records a drop."""
    block_noise = any(k.endswith(NOISE_STRENGTH) for k in state)
    state, noise_dim = zero_noise_state(state, len(config.feature_names))
    if block_noise:
        config.provenance["block_noise"] = "exported: the zero-noise draw; block noise strengths dropped"
    if noise_dim:
        config.provenance["noise_input"] = {
            "noise_dim": noise_dim,
            "exported": "zero-noise draw: the generator's dense-layer noise columns dropped",
        }
    plain = CP2Image(config)
    plain.load_state_dict(state, strict=True)
    return plain.eval()


def zero_noise_model(net: CP2Image) -> CP2Image:
    """A plain CP2Image drawing exactly what `net` draws with zero noise (provenance notes the drop)."""
    config = CP2ImageConfig(**{**net.config.__dict__, "provenance": dict(net.config.provenance)})
    return _plain_model(config, net.state_dict())


def convert_folder(source: str | Path, target: str | Path) -> Path:
    """A model folder whose weights still carry noise columns → a plain model folder at `target`."""
    source, target = Path(source), Path(target)
    try:
        raw = json.loads((source / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{source}: cannot read {CONFIG_FILE} ({err})") from err
    config = CP2ImageConfig(**{k: v for k, v in raw.items() if k in CP2ImageConfig.__dataclass_fields__})
    state = load_file(str(source / WEIGHTS_FILE))  # safetensors only: nothing is unpickled
    _plain_model(config, state).save_pretrained(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="model folder exported with noise columns")
    parser.add_argument("target", help="plain model folder to write")
    args = parser.parse_args(argv)
    print(convert_folder(args.source, args.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

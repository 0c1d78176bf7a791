"""Warm start for the real-cell model: the old `cp2image-bbbc021-real` generator with its channel swap corrected.

The old model was trained on crops ingested as DNA, Tubulin, Actin while the shared files
store DAPI, F-actin, β-tubulin. So its output channel 1 ("Tubulin") drew actin and its
"..._Tubulin" input features were measured on actin (and vice versa). This script:

1. maps every new feature name to the old feature that measured the same stain
   (Actin ↔ Tubulin exchanged in the name; a symmetric pair feature such as
   Correlation_Tubulin_Actin, whose swapped name does not exist, maps to itself);
2. re-expresses the dense layer in the new training statistics exactly
   (z_old = (m_new + s_new·z_new − m_old) / s_old, folded into weight and bias);
3. exchanges output channels 1 and 2 of the last convolution.
Everything else is copied. The result is an exported model folder for `init_from`.

    python docs/real-model-warm-start.py --old assets/models/cp2image-bbbc021-real \
        --data data/bbbc021-real --out runs/real-warm
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch


def swapped(name: str) -> str:
    return name.replace("Actin", "\0").replace("Tubulin", "Actin").replace("\0", "Tubulin")


def main() -> int:
    from cp2image.data.dataset import open_dataset
    from cp2image.models import CP2Image
    from cp2image.training.data import prepare_features, training_rows

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-nonfinite-fraction", type=float, default=0.05)  # TrainConfig's default
    args = p.parse_args()

    old = CP2Image.from_pretrained(args.old)
    oc = old.config
    assert list(oc.channels) == ["DNA", "Tubulin", "Actin"], oc.channels
    ds = open_dataset(args.data)
    table = prepare_features(ds, training_rows(ds, "train"), max_nonfinite_fraction=args.max_nonfinite_fraction)
    old_index = {n: i for i, n in enumerate(oc.feature_names)}
    new_cfg = dataclasses.replace(oc, feature_names=list(table.names), feature_mean=table.mean.tolist(),
                                  feature_scale=table.scale.tolist())
    new = CP2Image(new_cfg)
    state = {k: v.clone() for k, v in old.state_dict().items()}
    w_old, b_old = state["generator.dense.weight"].double(), state["generator.dense.bias"].double()
    m_old = torch.tensor(oc.feature_mean, dtype=torch.float64)
    s_old = torch.tensor(oc.feature_scale, dtype=torch.float64)
    w_new = torch.zeros(w_old.shape[0], len(table.names), dtype=torch.float64)
    b_new = b_old.clone()
    mapped = unmatched = 0
    for j, name in enumerate(table.names):
        source = swapped(name) if swapped(name) in old_index else name
        i = old_index.get(source)
        if i is None:
            unmatched += 1
            continue
        mapped += 1
        w_new[:, j] = w_old[:, i] * float(table.scale[j]) / s_old[i]
        b_new += w_old[:, i] * (float(table.mean[j]) - m_old[i]) / s_old[i]
    state["generator.dense.weight"] = w_new.float()
    state["generator.dense.bias"] = b_new.float()
    order = torch.tensor([0, 2, 1])  # new (DNA, Tubulin, Actin) ← old (DNA, "Tubulin"=actin, "Actin"=tubulin)
    state["generator.to_image.weight"] = state["generator.to_image.weight"][order].clone()
    state["generator.to_image.bias"] = state["generator.to_image.bias"][order].clone()
    new.load_state_dict(state, strict=True)
    new.save_pretrained(args.out)
    print(f"{mapped} features mapped, {unmatched} without a counterpart (zero weights); saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

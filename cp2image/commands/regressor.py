"""`cp2image regressor`: train the image → feature regressor used as a consistency critic.

    cp2image regressor --data DS --out RUN/regressor [--steps 3000] [--batch-size 64]
    cp2image train --data DS --out RUN --config cfg.toml   # with consistency_regressor = "RUN/regressor"
    cp2image regressor --data DS --out RUN/critic2 --init-from RUN/regressor --generated-by MODEL
        # + MODEL's own images of the training requests, labelled by measuring them: a critic that
        # generated images cannot fool (cp2image.training.generated_views)

Prints the regressor's held-out Pearson r for the features the control table tracks.
"""
from __future__ import annotations

import argparse
import logging

SHOWN = ("Nuclei_AreaShape_Area", "Nuclei_Intensity_MeanIntensity_DNA", "Cytoplasm_AreaShape_Area",
         "Cells_AreaShape_Area", "Cells_Intensity_MeanIntensity_Actin", "Cells_Intensity_MeanIntensity_Tubulin")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("regressor", help="train the image → feature regressor (consistency critic)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--out", required=True, help="output folder (config.json, model.safetensors, heldout_r.csv)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--split", default="train", help="training split (default train)")
    p.add_argument("--heldout-split", default="val", help="split the per-feature r is measured on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--init-from", help="fine-tune another regressor folder (same features) instead of starting fresh")
    p.add_argument("--generated-by", metavar="MODEL",
                   help="a CP2Image folder: add its images of the training requests, labelled by measuring them")
    p.add_argument("--generated-edits", type=int, default=1,
                   help="with --generated-by: coupled-edit views per request (default 1)")
    p.add_argument("--generated-refined", action="store_true",
                   help="with --generated-by: also each request drawn with MODEL's critic-guided refinement")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from cp2image.training.regressor import RegressorTrainConfig, train_regressor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = RegressorTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, split=args.split,
                                  heldout_split=args.heldout_split, seed=args.seed, num_threads=args.threads,
                                  progress=not args.no_progress, init_from=args.init_from,
                                  generated_by=args.generated_by, generated_edits=args.generated_edits,
                                  generated_refined=args.generated_refined)
    model = train_regressor(args.data, args.out, config)
    r = dict(zip(model.config.feature_names, model.config.heldout_r))
    values = np.array(model.config.heldout_r)
    print(f"regressor: {len(values)} features, held-out median r {np.median(values):.3f}, "
          f"{100 * np.mean(values > 0.5):.1f}% r > 0.5, {100 * np.mean(values > 0.8):.1f}% r > 0.8 "
          f"({model.config.provenance['wall_seconds']:.0f} s)")
    for name in SHOWN:
        if name in r:
            print(f"  {name}: r = {r[name]:.3f}")
    generated = model.config.provenance.get("heldout_r_generated_median")
    if generated is not None:
        print(f"  on the generator's images of the held-out cells: median r {generated:.3f} "
              f"({model.config.provenance['generated_views']} generated training views)")
    print(f"saved: {args.out}")
    return 0

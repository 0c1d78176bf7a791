"""Score a model folder on a subset of a fresh simulated screen: the sim model's ship-rule figures.

    cp2image simulate screens/seed17 --cells 4608 --replicates 8 --seed 17 --jobs 1      # ≈ 2 min
    .venv/bin/python benchmarks/screen_verdict.py assets/models/cp2image-sim screens/seed17 --subset selection

Prints the balanced MoA fidelity ratio (with its interval), the share of features with Pearson r > 0.5, the
median r and the frame statistic, and writes them as JSON with `--out`. The definitions and why they differ from
`cp2image evaluate`: `cp2image/evaluation/screen_verdict.py`. The MoA classifier learns from the bundled screen's
training split (`--train-dataset`). Images are drawn as `generate` draws them (refined where the folder has a critic).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model folder")
    parser.add_argument("screen", help="a simulated screen (cp2image simulate) the model never saw")
    parser.add_argument("--subset", choices=["report", "selection", "rest"], default="selection")
    parser.add_argument("--train-dataset", default=str(REPO_ROOT / "assets" / "datasets" / "bbbc021-sim"),
                        help="dataset whose training split the MoA classifier learns from")
    parser.add_argument("--subset-size", type=int, default=1152)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from cp2image.data.dataset import open_dataset
    from cp2image.evaluation.screen_verdict import score_screen, verdict_subsets
    from cp2image.features import measure
    from cp2image.models.cp2image import CP2Image

    torch.set_num_threads(args.threads)
    started = time.time()
    screen = open_dataset(args.screen)
    rows = verdict_subsets(len(screen.cells), args.subset_size)[args.subset]
    bundled = open_dataset(args.train_dataset)
    train = bundled.cells[bundled.cells.Metadata_Split == "train"].reset_index(drop=True)
    model = CP2Image.from_pretrained(args.model)
    names = list(model.feature_names)
    cells = screen.cells.iloc[rows].reset_index(drop=True)
    images = model.generate(cells[names], batch_size=64)
    generated = measure(images, n_jobs=1, progress=False)
    score = score_screen(cells[names], generated, np.asarray(images), cells, train, feature_names=names,
                         subset=args.subset)
    result = {"model": args.model, "screen": args.screen, **score.as_dict(),
              "seconds": round(time.time() - started)}
    low, high = score.balanced_ratio_interval
    print(f"| {args.subset} subset, {score.n_cells} cells | balanced MoA ratio {score.balanced_ratio:.3f} "
          f"({low:.3f}–{high:.3f}) | features r > 0.5 {100 * score.features_r_above_half:.1f} % "
          f"| median r {score.median_r:.3f} | frame {score.frame:.2f} | {result['seconds']} s |")
    if args.out:
        tmp = Path(args.out).with_name(f".{Path(args.out).name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

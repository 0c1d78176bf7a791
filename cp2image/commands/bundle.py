"""`cp2image bundle`: a finished training run → a shipped model folder (weights, config, card, figure).

    cp2image bundle --run RUN --data DS --target assets/models/NAME --title "..." \
        --card-text card.json [--figure docs/figures/generated-vs-original.png] [--evaluation EVAL_DIR]

card.json holds description / intended_use / limitations (optional figure_title,
figure_link, extra_metrics). Held-out numbers come from `cp2image evaluate --out
EVAL_DIR`; the folder is copied to TARGET/evaluation and summarised in the card.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", help="turn a training run into a shipped model folder with a model card",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", dest="run_folder", required=True, type=Path, metavar="RUN",
                   help="training run folder (with model/)")
    p.add_argument("--data", required=True, type=Path, help="dataset with the held-out split")
    p.add_argument("--target", required=True, type=Path, help="bundle folder to write")
    p.add_argument("--title", required=True, help="model card title")
    p.add_argument("--card-text", type=Path, required=True,
                   help="JSON with description / intended_use / limitations")
    p.add_argument("--figure", type=Path, default=None, help="write the original-vs-generated figure here")
    p.add_argument("--evaluation", type=Path, default=None,
                   help="folder written by `cp2image evaluate` to copy into TARGET/evaluation and cite in the card")
    p.add_argument("--split", default="test", help="held-out split of the figure (default test)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from ..training.bundle import BundleConfig, bundle_run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        text = json.loads(args.card_text.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{args.card_text} is not valid JSON ({err})") from err
    target = bundle_run(BundleConfig(run=args.run_folder, data=args.data, target=args.target, title=args.title,
                                     card_text=text, figure=args.figure, evaluation=args.evaluation,
                                     split=args.split))
    print(f"wrote {target}")
    return 0

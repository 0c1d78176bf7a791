"""`cp2image sim-check DATASET`: does a simulated dataset carry real, recoverable biology?

Prints three checks as Markdown (cp2image.data.simulate.validate): Spearman ρ of the
measured vs true nucleus area, single-cell MoA accuracy with whole plates held out,
and the order of latrunculin B doses along PC1. Needs the simulator's `Truth_*` columns.
"""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim-check", help="check a simulated dataset: area recovery, MoA accuracy, dose order",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="simulated dataset folder (from `cp2image simulate`)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data.dataset import open_dataset
    from ..data.simulate.validate import report

    print(report(open_dataset(args.dataset).cells))
    return 0

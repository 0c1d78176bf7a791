"""`cp2image table1`: the paper's Table 1 protocol, scaled to a CPU.

    cp2image table1 --out DIR [--data DS] [--steps 300] [--seeds 0 1 2] [--inception PATH]

Trains VAE, VAEplus, LSGAN and CP2Image with each seed on DS (default: the bundled
simulated screen), evaluates every run against one shared reference (held-out cells
measured, domain encoder trained once) and writes DIR/table1.md (mean ± sd of FID/KID
when Inception weights are given, and of the offline Fréchet distances/KID in
CellProfiler and domain-encoder space), DIR/results.csv and per-run outputs. Re-running
the same command resumes: finished runs are reused, interrupted ones continue.
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path


MODEL_ORDER = ("vae", "vaeplus", "lsgan", "cp2image")  # as cp2image.evaluation.table1 (kept light for --help)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("table1", help="train + evaluate VAE, VAEplus, LSGAN, CP2Image × seeds → Table 1",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (re-use it to resume)")
    p.add_argument("--data", default=None, help="dataset folder (default: the bundled simulated screen)")
    p.add_argument("--models", nargs="+", default=list(MODEL_ORDER), choices=list(MODEL_ORDER))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=300, help="training steps per run (default 300, CPU-scaled)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--base-filters", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--eval-cells", type=int, default=500, help="held-out cells evaluated per run")
    p.add_argument("--classifier-cells", type=int, default=2000,
                   help="real training cells measured for the MoA classifier")
    p.add_argument("--kid-subset-size", type=int, default=250)
    p.add_argument("--inception", default=None,
                   help="FID Inception-v3 TorchScript file (default: $CP2IMAGE_INCEPTION; none → FID skipped)")
    p.add_argument("--inception-cells", type=int, default=200,
                   help="evaluated cells passed through Inception (default 200; 0 = all)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cp2image.assets import bundled_dataset_dir
    from cp2image.evaluation.table1 import Table1Config, run_table1

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Table1Config(
        models=list(args.models), seeds=list(args.seeds), steps=args.steps, batch_size=args.batch_size,
        base_filters=args.base_filters, num_threads=args.threads, eval_cells=args.eval_cells,
        classifier_train_cells=args.classifier_cells, kid_subset_size=args.kid_subset_size,
        inception=args.inception, inception_cells=args.inception_cells or None, progress=args.progress,
    )
    data = Path(args.data) if args.data else bundled_dataset_dir()
    command = "cp2image table1 " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else ""
    run_table1(data, args.out, config=config, command=command)
    print((Path(args.out) / "table1.md").read_text())
    return 0

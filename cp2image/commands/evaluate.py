"""`cp2image evaluate`: FID/KID, offline distances, feature correlation and MoA fidelity.

    cp2image evaluate --model M --data DS --out DIR [--split test] [--inception PATH]

M is a model folder, a training run folder (RUN/model), a Hub id or 'bundled[:name]'
(default: $CP2IMAGE_MODEL, else the bundled model); DS a dataset folder (default: the
bundled simulated screen). Writes DIR/metrics.json, correlation.csv, pairs.parquet,
moa_per_class.csv, report.md, report.html and figures/*.png|svg, and the domain
encoder it trains (DIR/encoder/) unless --encoder names a saved one.

FID/KID need the FID Inception-v3 weights as a TorchScript file (--inception PATH or
$CP2IMAGE_INCEPTION); nothing is downloaded. Without them FID is skipped with a note
and the offline distances (CellProfiler space, domain encoder) are still reported.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model on a dataset's held-out split (FID/KID, correlation, MoA)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder, run folder, Hub id or 'bundled[:name]'")
    p.add_argument("--data", default=None, help="dataset folder (default: the bundled simulated screen)")
    p.add_argument("--out", required=True, help="output folder for metrics and the report")
    p.add_argument("--split", default="test", help="held-out split, or several joined by commas, e.g. test,val (default: test)")
    p.add_argument("--inception", default=None,
                   help="FID Inception-v3 TorchScript file (default: $CP2IMAGE_INCEPTION; none → FID skipped)")
    p.add_argument("--inception-cells", type=int, default=0,
                   help="evaluated cells passed through Inception (0 = all; Inception is slow on CPU)")
    p.add_argument("--encoder", default=None,
                   help="saved domain encoder folder to reuse (default: train one into OUT/encoder)")
    p.add_argument("--max-cells", type=int, default=2000, help="held-out cells evaluated (0 = all; default 2000)")
    p.add_argument("--max-train-cells", type=int, default=5000,
                   help="real training cells measured for the MoA classifier (default 5000)")
    p.add_argument("--moa-groups", default="auto", choices=("auto", "plate", "well", "split"),
                   help="MoA fidelity: GroupKFold over held-out plates or wells (classifier trained on the training "
                        "split + other folds), or 'split' (training split only); auto = plate when the dataset is "
                        "split by plate, else well")
    p.add_argument("--moa-diagnosis", action="store_true",
                   help="also run the MoA-loss probes (cp2image.evaluation.moa_diagnosis): same-size independent "
                        "noise, offset removed, top error components removed; writes moa_diagnosis.csv/json")
    p.add_argument("--stored-real-features", action="store_true",
                   help="use the dataset's stored profiles of the real cells instead of measuring their crops again "
                        "(only for datasets measured by cp2image.features.measure)")
    p.add_argument("--jobs", type=int, default=None, help="feature measurement processes (default: 1)")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairs-budget-mb", type=float, default=2.5,
                   help="cap on pairs.parquet's real/generated values (default 2.5 MB; keeps bundles small)")
    p.add_argument("--no-report", action="store_true", help="write metrics and tables only (no report/figures)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cp2image.assets import bundled_dataset_dir
    from cp2image.evaluation.config import EvaluationConfig
    from cp2image.evaluation.metrics import jsonable
    from cp2image.evaluation.run import evaluate
    from cp2image.evaluation.loading import load_for_evaluation

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    data = Path(args.data) if args.data else bundled_dataset_dir()
    loaded = load_for_evaluation(args.model)
    if loaded.notice:
        print(f"note: {loaded.notice}", file=sys.stderr)
    config = EvaluationConfig(
        split=args.split,
        max_cells=None if args.max_cells == 0 else args.max_cells,
        max_train_cells=args.max_train_cells,
        n_jobs=args.jobs,
        kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size,
        inception=args.inception,
        inception_max_cells=args.inception_cells or None,
        encoder_dir=args.encoder or str(out / "encoder"),
        seed=args.seed,
        moa_groups=args.moa_groups,
        moa_diagnosis=args.moa_diagnosis,
        real_features="stored" if args.stored_real_features else "measure",
        pairs_budget_bytes=int(args.pairs_budget_mb * 1e6),
        progress=not args.no_progress,
    )
    print(f"evaluating {loaded.kind} model ({loaded.source}) on {data} [{args.split}]", file=sys.stderr)
    metrics = evaluate(loaded.model, data, args.split, out, config=config, model_source=loaded.source,
                       report=not args.no_report)
    inc = metrics["inception"]
    if not inc["available"]:
        print(f"note: FID/KID not computed — {inc['reason']}", file=sys.stderr)
    print(json.dumps(jsonable(metrics["headline"]), indent=2))
    if args.moa_diagnosis and (out / "moa_diagnosis.csv").is_file():
        import pandas as pd

        probes = pd.read_csv(out / "moa_diagnosis.csv")
        print(probes.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"report: {out / 'report.md'}" if not args.no_report else f"metrics: {out / 'metrics.json'}")
    return 0

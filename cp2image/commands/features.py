"""`cp2image features DATASET`: measure CellProfiler-style features on a dataset's crops.

Replaces the dataset's feature columns (any `Cells_/Nuclei_/Cytoplasm_` columns
already there, e.g. carried over from CellProfiler, are dropped so names never
mix two measurement runs) and records the new feature list in dataset.json.
The cells table is swapped atomically, so an interrupted run leaves the old one.
"""
from __future__ import annotations

import argparse
import time

from ..data.columns import feature_columns
from ..data.dataset import DatasetError, open_dataset, replace_cells


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="segment crops and measure CellProfiler-style features into cells.parquet",
        description="Segment every crop (nucleus, cell, cytoplasm) and measure CellProfiler-named "
        "features; writes them into DATASET/cells.parquet and the feature list into dataset.json.",
    )
    p.add_argument("dataset", help="dataset directory (images.npy, cells.parquet, dataset.json)")
    p.add_argument("--jobs", "-j", type=int, default=-1, help="worker processes (-1 = all cores; default)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..features import FAILED_COLUMN, measure

    try:
        ds = open_dataset(args.dataset)
    except DatasetError as err:
        print(f"error: {err}")
        return 2
    n = len(ds)
    t0 = time.perf_counter()
    feats = measure(ds.images, n_jobs=args.jobs, progress=not args.no_progress)
    elapsed = time.perf_counter() - t0
    old = feature_columns(ds.cells) + [c for c in (FAILED_COLUMN,) if c in ds.cells.columns]
    cells = ds.cells.drop(columns=old).reset_index(drop=True)
    cells = cells.join(feats)
    names = feature_columns(feats)
    replace_cells(ds.path, cells, features=names)
    failed = int(feats[FAILED_COLUMN].sum())
    ok_rate = 100.0 * (n - failed) / n if n else 0.0
    print(f"measured {len(names)} features on {n} crops in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.0f} crops/s)")
    print(f"segmentation succeeded on {n - failed}/{n} crops ({ok_rate:.1f}%); failed crops have NaN features and {FAILED_COLUMN}=True")
    if old:
        print(f"replaced {len(old)} previous feature column(s)")
    print(f"wrote {ds.path / 'cells.parquet'} and the feature list in dataset.json")
    return 0

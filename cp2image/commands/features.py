"""`cp2image features DATASET`: measure CellProfiler-style features on a dataset's crops.

Replaces the dataset's feature columns (any `Cells_/Nuclei_/Cytoplasm_` columns
already there, e.g. carried over from CellProfiler, are dropped so names never
mix two measurement runs) and records the new feature list in dataset.json.
The cells table is swapped atomically, so an interrupted run leaves the old one.
When the dataset has DMSO controls, a ProfileNormaliser (robust z-scores to
DMSO per plate) is fitted on the measured features and stored in
dataset.json under "normalisation", for training and for new data.
"""
from __future__ import annotations

import argparse
import time

from ..data.columns import feature_columns
from ..data.dataset import DatasetError, open_dataset, replace_cells
from ..distributed.cluster import add_cluster_arguments, cluster_config_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="segment crops and measure CellProfiler-style features into cells.parquet",
        description="Segment every crop (nucleus, cell, cytoplasm) and measure CellProfiler-named "
        "features; writes them into DATASET/cells.parquet and the feature list into dataset.json.",
    )
    p.add_argument("dataset", help="dataset directory (images.npy, cells.parquet, dataset.json)")
    add_cluster_arguments(p, jobs_help="worker processes")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--control", default="DMSO", help="negative-control compound for the normalisation (default DMSO)")
    p.add_argument("--no-normalise", action="store_true", help="do not fit/store DMSO normalisation statistics")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..distributed import dask_client
    from ..features import FAILED_COLUMN, ProfileNormaliser, measure

    cluster = cluster_config_from_args(args)
    try:
        ds = open_dataset(args.dataset)
    except DatasetError as err:
        print(f"error: {err}")
        return 2
    n = len(ds)
    with dask_client(cluster) as client:  # every chunk of crops is one dask task
        t0 = time.perf_counter()
        feats = measure(ds.images, client=client, progress=not args.no_progress)
        elapsed = time.perf_counter() - t0
    old = feature_columns(ds.cells) + [c for c in (FAILED_COLUMN,) if c in ds.cells.columns]
    cells = ds.cells.drop(columns=old).reset_index(drop=True)
    cells = cells.join(feats)
    names = feature_columns(feats)
    failed = int(feats[FAILED_COLUMN].sum())
    ok_rate = 100.0 * (n - failed) / n if n else 0.0
    meta: dict = {
        "features": names,
        "feature_measurement": {
            "n_features": len(names),
            "segmentation_success_rate": ok_rate / 100.0,
            "failed_column": FAILED_COLUMN,
        },
    }
    note = "no normalisation fitted (--no-normalise)"
    if not args.no_normalise:
        controls = cells["Metadata_Compound"] == args.control
        good = cells[~cells[FAILED_COLUMN]]
        if controls.any():
            normaliser = ProfileNormaliser(features=names, control_value=args.control).fit(good)
            meta["normalisation"] = normaliser.to_dict()
            note = f"fitted DMSO-per-plate normalisation on {int((controls & ~cells[FAILED_COLUMN]).sum())} {args.control} cells"
        else:
            meta["normalisation"] = None
            note = f"no {args.control} cells: no normalisation stored (use --control NAME)"
    replace_cells(ds.path, cells, **meta)
    print(f"measured {len(names)} features on {n} crops in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.0f} crops/s)")
    groups: dict[str, int] = {}
    for name in names:
        groups[name.split("_")[1]] = groups.get(name.split("_")[1], 0) + 1
    print("  " + ", ".join(f"{g} {k}" for g, k in groups.items()))
    print(f"segmentation succeeded on {n - failed}/{n} crops ({ok_rate:.1f}%); failed crops have NaN features and {FAILED_COLUMN}=True")
    if old:
        print(f"replaced {len(old)} previous feature column(s)")
    print(note)
    print(f"wrote {ds.path / 'cells.parquet'} and the feature list in dataset.json")
    return 0

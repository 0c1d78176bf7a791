"""`cp2image features DATASET`: measure CellProfiler-style features on a dataset's crops.

Replaces the dataset's feature columns (any `Cells_/Nuclei_/Cytoplasm_` columns
already there, e.g. carried over from CellProfiler, are dropped so names never
mix two measurement runs) and records the new feature list in dataset.json.
The cells table is swapped atomically, so an interrupted run leaves the old one.
No profile normalisation is stored: training and analysis use the model's own
statistics, and DMSO-per-plate statistics can be fitted from the table at any time
(`ProfileNormaliser().fit(open_dataset(DATASET).cells)`). A "normalisation" entry
left in dataset.json by an older version is dropped when the features are replaced.

Chunks of crops are dask tasks (a LocalCluster of --jobs workers, or --scheduler
ADDRESS). Their rows stream into the new parquet file in row groups as they come
back, so only the metadata columns and one row group are in memory, not a
480k × 492 feature table.
"""
from __future__ import annotations

import argparse
import time
import uuid


from ..data.columns import feature_columns
from ..data.dataset import DatasetError, open_dataset, replace_cells_file
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
    p.set_defaults(run=run)


ROW_GROUP = 16_384  # rows per parquet row group written while streaming


class _StreamedCells:
    """The new cells table, written to a temporary parquet file one row group at a time.

    Rows are the dataset's metadata joined with the measured features, in crop order.
    """

    def __init__(self, base, path) -> None:
        self.base, self.path = base, path
        self.buffer: list = []
        self.names: list[str] = []
        self.failed = self.written = self.pending = 0
        self.writer = None

    def add(self, feats) -> None:
        from ..features import FAILED_COLUMN

        self.names = self.names or feature_columns(feats)
        self.failed += int(feats[FAILED_COLUMN].sum())
        self.buffer.append(feats)
        self.pending += len(feats)
        if self.pending >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..features import FAILED_COLUMN

        if not self.buffer:
            return
        feats = pd.concat(self.buffer, ignore_index=True)
        self.buffer.clear()
        self.pending = 0
        start = self.written
        rows = self.base.iloc[start:start + len(feats)].reset_index(drop=True).join(feats)
        table = pa.Table.from_pandas(rows, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)
        self.written += len(feats)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def run(args: argparse.Namespace) -> int:
    from ..distributed import dask_client
    from ..features import FAILED_COLUMN
    from ..features.measure import iter_measure

    cluster = cluster_config_from_args(args)
    try:
        ds = open_dataset(args.dataset)
    except DatasetError as err:
        print(f"error: {err}")
        return 2
    n = len(ds)
    old = feature_columns(ds.cells) + [c for c in (FAILED_COLUMN,) if c in ds.cells.columns]
    base = ds.cells.drop(columns=old).reset_index(drop=True)
    del ds.cells  # the old feature columns are not needed any more
    cells = _StreamedCells(base, ds.path / f".cells.parquet.{uuid.uuid4().hex[:8]}")
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="crop", desc="measuring")
    try:
        with dask_client(cluster) as client:  # every chunk of crops is one dask task
            t0 = time.perf_counter()
            for s, feats in iter_measure(ds.images, client=client):
                cells.add(feats)
                if bar is not None:
                    bar.update(s.stop - s.start)
            cells.flush()
            elapsed = time.perf_counter() - t0
        if cells.writer is None:
            raise DatasetError(f"{ds.path}: no crops to measure")
        cells.close()
        ok_rate = 100.0 * (n - cells.failed) / n if n else 0.0
        meta: dict = {
            "features": cells.names,
            "feature_measurement": {
                "n_features": len(cells.names),
                "segmentation_success_rate": ok_rate / 100.0,
                "failed_column": FAILED_COLUMN,
            },
        }
        replace_cells_file(ds.path, cells.path, drop_meta=("normalisation",), **meta)
    finally:
        if bar is not None:
            bar.close()
        cells.close()
        cells.path.unlink(missing_ok=True)
    names, failed = cells.names, cells.failed
    print(f"measured {len(names)} features on {n} crops in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.0f} crops/s)")
    groups: dict[str, int] = {}
    for name in names:
        groups[name.split("_")[1]] = groups.get(name.split("_")[1], 0) + 1
    print("  " + ", ".join(f"{g} {k}" for g, k in groups.items()))
    print(f"segmentation succeeded on {n - failed}/{n} crops ({ok_rate:.1f}%); failed crops have NaN features and {FAILED_COLUMN}=True")
    if old:
        print(f"replaced {len(old)} previous feature column(s)")
    print(f"wrote {ds.path / 'cells.parquet'} and the feature list in dataset.json")
    return 0

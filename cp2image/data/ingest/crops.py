"""Ready-made single-cell crops (raw 16-bit) → a cp2image dataset with measured features.

The crops come from a `CropSource` (`crop_sources.py`: an ``.npz`` archive like
``bbbc021_cells_68x68.npz``, a folder of ``.npy`` files plus a metadata CSV, or
several of them combined). Their channels may be stored in any order:
``channel_order`` names them in input order (``("DNA", "Actin", "Tubulin")`` for
the shared BBBC021 crop archives) and they are rearranged into cp2image's order
(`cp2image.channels.CHANNELS`) before anything else happens; the order given is
recorded in the dataset's provenance.

Intensities become uint8 per crop and channel (``max`` by default, as in the
original work); features are then measured on the uint8 crops by
`cp2image.features.measure`, so real crops get exactly the feature set the models
and the simulator use. Crops are processed in batches of ``batch_size`` and
streamed into the dataset; a killed run resumes after its last written batch
(`streaming.IngestStream`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.data.columns import MOA, feature_columns
from cp2image.data.ingest.channel_order import channel_permutation
from cp2image.data.ingest.config import CropIngestConfig
from cp2image.data.ingest.crop_sources import CropSource
from cp2image.data.ingest.splits import assign_splits
from cp2image.data.ingest.streaming import IngestStream, measure_and_filter, resume_key
from cp2image.data.ingest.summary import IngestError, IngestSummary
from cp2image.data.ingest.tables import annotate_moa, read_moa_table
from cp2image.data.intensity import batch_to_uint8
from cp2image.data.quality import EMPTY_CROP_COLUMN, empty_crops

log = logging.getLogger(__name__)


def _with_moa(source: CropSource, moa_table: str | Path | None) -> pd.DataFrame:
    """The source's metadata, with Metadata_MoA from the MoA table (the crops' own MoA fills its gaps)."""
    cells = source.metadata.copy()
    if moa_table is None:
        return cells
    from_table = annotate_moa(cells["Metadata_Compound"], cells["Metadata_Concentration"], read_moa_table(moa_table))
    if MOA in cells.columns:
        given = cells[MOA]
        disagree = int((from_table.notna() & given.notna() & (from_table != given)).sum())
        if disagree:
            log.warning("%s: %d crops have an MoA that differs from %s; using the table's", source.description,
                        disagree, moa_table)
        from_table = from_table.fillna(given)
    cells[MOA] = from_table
    return cells


def _select(cells: pd.DataFrame, config: CropIngestConfig, summary: IngestSummary, where: str) -> np.ndarray:
    """Indices of the crops to ingest: --moa-only, then a seeded --subset."""
    index = np.arange(len(cells))
    if config.moa_only:
        if MOA not in cells.columns:
            raise IngestError(f"{where}: --moa-only needs an moa column or --moa-table")
        index = index[cells[MOA].notna().to_numpy()]
        summary.n_skipped_moa = len(cells) - len(index)
    if config.subset is not None and config.subset < len(index):
        rng = np.random.default_rng(config.seed)
        index = np.sort(rng.choice(index, size=config.subset, replace=False))
    if len(index) == 0:
        raise IngestError(f"{where}: no crops left to ingest")
    return index


def _dataset_meta(source: CropSource, moa_table: str | Path | None, config: CropIngestConfig) -> dict:
    return {
        "intensity": {**asdict(config.intensity), "scope": "crop"},
        "provenance": {
            **source.provenance,
            "channel_order": list(config.channel_order),  # the input's channels; stored as CHANNELS
            "moa_table": str(moa_table) if moa_table is not None else None,
            "subset": config.subset,
            "moa_only": config.moa_only,
            "split_by": config.split_by,
            "seed": config.seed,
            "features": "cp2image.features.measure" if config.measure else None,
            "drop_failed": config.drop_failed,
        },
    }


def ingest_crops(
    source: CropSource,
    out: str | Path,
    *,
    moa_table: str | Path | None = None,
    config: CropIngestConfig | None = None,
    client=None,
) -> IngestSummary:
    """Normalise, measure and write the crops of `source` as a dataset at `out`.

    With a dask `client` (`cp2image.distributed`), each batch's crops are measured
    as dask tasks (chunks of crops) on that cluster. A run killed part-way resumes
    when called again with the same source and options (`config.restart` discards
    the unfinished work instead); the dataset is then identical to an uninterrupted run's.
    """
    config = config or CropIngestConfig()
    out = Path(out)
    cells = _with_moa(source, moa_table)
    summary = IngestSummary(out=out, source="crops", n_objects=len(cells))
    index = _select(cells, config, summary, source.description)
    cells = cells.iloc[index].reset_index(drop=True)
    cells["Metadata_Split"] = assign_splits(cells, by=config.split_by, seed=config.seed)
    summary.n_images = len(index)
    measure = _measure_fn(client) if config.measure else None
    key = resume_key({"moa_table": moa_table}, {**asdict(config), "source": source.fingerprint,
                                                "description": source.description})
    starts = range(0, len(index), config.batch_size)
    from tqdm.auto import tqdm

    with IngestStream(out, len(index), crop_size=source.crop_size, meta=_dataset_meta(source, moa_table, config),
                      key=key, summary=summary, units=len(starts), unit_name="batches",
                      overwrite=config.overwrite, restart=config.restart) as stream:
        for start in tqdm(starts, desc="ingest", unit="batch", disable=not config.progress):
            if str(start) in stream.done:
                continue
            stop = min(start + config.batch_size, len(index))
            images, batch = _batch(source, index[start:stop], cells.iloc[start:stop], config, measure, summary)
            stream.write(str(start), images, batch)
        if summary.n_written == 0:
            stream.abort()
            raise IngestError(f"{source.description}: every crop failed segmentation; nothing to write")
        stream.writer.meta["features"] = feature_columns(stream.columns())  # model order = measure()'s order
    summary.n_features = len(stream.writer.meta["features"])
    log.info("ingested %d crops from %s into %s", summary.n_written, source.description, out)
    return summary


def _batch(source: CropSource, index: np.ndarray, cells: pd.DataFrame, config: CropIngestConfig,
           measure: Callable[..., pd.DataFrame] | None, summary: IngestSummary) -> tuple[np.ndarray, pd.DataFrame]:
    """One batch: load, reorder channels, scale to uint8, measure (and maybe drop failures)."""
    raw = source.load(index)[:, channel_permutation(config.channel_order)]  # input order → CHANNELS order
    images = batch_to_uint8(raw, config.intensity)
    cells = cells.reset_index(drop=True)
    cells[EMPTY_CROP_COLUMN] = empty_crops(images)  # flagged, not dropped: the user decides (cp2image.data.quality)
    summary.n_empty_crops += int(cells[EMPTY_CROP_COLUMN].sum())
    if measure is None:
        return images, cells
    return measure_and_filter(images, cells, measure, n_jobs=config.n_jobs, drop_failed=config.drop_failed,
                              summary=summary)


def _measure_fn(client) -> Callable[..., pd.DataFrame]:
    from cp2image.features import measure

    return partial(measure, client=client) if client is not None else measure

"""Simulate a screen end to end: render wells, crop, measure, stream to a dataset.

For each well of the plan (`screen.plan_screen`):

1. render fields of view (`render.render_field`) until the well has enough cells;
2. cut a crop around every primary nucleus centre whose crop fits in the field;
3. segment and measure the crops with `cp2image.features.measure` — the same code
   that measures real BBBC021 crops — and drop crops whose segmentation failed or
   that have any undefined (NaN/inf) feature, as profiling QC would, rendering more
   fields if that leaves the well short;
4. append crops, metadata, measured features and the simulator's ground truth
   (`Truth_*`) to a `DatasetWriter`, so memory stays bounded by one well per worker.

Each well is one dask task (`cp2image.distributed`): on a LocalCluster, or on an
existing cluster given its scheduler's address. Every well has its own random stream
derived from (seed, plate, well), so the result does not depend on the number of
workers or where they run. The writer journals each finished well, so a simulation
that is killed resumes at the next well when the same command runs again, and ends
with the same dataset as an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cp2image.data.columns import FAILED_COLUMN
from cp2image.data.dataset import DatasetWriter, open_dataset, write_dataset
from cp2image.data.simulate.cells import draw_cells, expected_cell_radius
from cp2image.data.simulate.phenotypes import PARAMETER_NAMES
from cp2image.data.simulate.render import PlateEffect, RenderConfig, crop_cells, layout_positions, render_field
from cp2image.data.simulate.screen import ScreenConfig, WellPlan, plan_screen
from cp2image.data.splits import assign_splits_by_well

if TYPE_CHECKING:
    from distributed import Client

    from cp2image.distributed import ClusterConfig

log = logging.getLogger(__name__)

MAX_FIELDS_PER_WELL = 10_000  # guards against a well that never yields measurable cells


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a simulated dataset."""

    screen: ScreenConfig
    render: RenderConfig = field(default_factory=RenderConfig)
    measure: bool = True  # False: crops and ground truth only (rendering benchmarks)
    features_dtype: str = "float32"  # measured features are stored in this dtype (halves the size)


def truth_column(name: str) -> str:
    """`cell_radius` → `Truth_CellRadius`."""
    return "Truth_" + "".join(part.capitalize() for part in name.split("_"))


def _truth_frame(cells: dict[str, np.ndarray], field_area: np.ndarray, nucleus_area: np.ndarray, idx: np.ndarray) -> pd.DataFrame:
    cols: dict[str, np.ndarray] = {truth_column(n): cells[n][idx] for n in PARAMETER_NAMES if n in cells}
    cols["Truth_MitoticProbability"] = cells["mitotic_probability"][idx]
    cols["Truth_Mitotic"] = cells["mitotic"][idx].astype(bool)
    cols["Truth_NucleusCount"] = cells["n_nuclei"][idx]
    cols["Truth_Micronucleated"] = cells["micronucleated"][idx].astype(bool)
    cols["Truth_Response"] = cells["response"][idx]
    cols["Truth_Susceptibility"] = cells["susceptibility"][idx]
    cols["Truth_NucleusArea"] = nucleus_area[idx]
    cols["Truth_CellArea"] = field_area[idx].astype(np.int64)
    return pd.DataFrame(cols)


def _render_until(rng: np.random.Generator, plan: WellPlan, plate: PlateEffect, config: SimulationConfig,
                  need: int, first_site: int) -> tuple[list[np.ndarray], list[pd.DataFrame], int]:
    """Render fields until at least `need` crops exist; returns crops, rows and the next site."""
    t = plan.treatment
    radius = expected_cell_radius(t.compound, t.concentration)
    per_site = max(1, -(-plan.n_cells // config.screen.sites_per_well))  # spread a well over its sites
    crops_all: list[np.ndarray] = []
    rows_all: list[pd.DataFrame] = []
    have, site = 0, first_site
    while have < need:
        if site - first_site >= MAX_FIELDS_PER_WELL:
            raise RuntimeError(f"well {plan.plate}/{plan.well}: no cells after {MAX_FIELDS_PER_WELL} fields")
        centres = layout_positions(rng, config=config.render, cell_radius=radius)
        cells = draw_cells(rng, len(centres), compound_name=t.compound, concentration=t.concentration)
        fov = render_field(rng, cells, centres, config=config.render, plate=plate)
        crops, keep = crop_cells(fov.image, fov.centres, crop_size=config.render.crop_size)
        if len(keep) > per_site:
            chosen = np.sort(rng.choice(len(keep), per_site, replace=False))
            crops, keep = crops[chosen], keep[chosen]
        rows = _truth_frame(cells, fov.cell_area, fov.nucleus_area, keep)
        rows.insert(0, "Metadata_Site", site)
        rows.insert(1, "Metadata_ObjectNumber", keep + 1)
        rows.insert(2, "Metadata_Center_X", fov.centres[keep, 0])
        rows.insert(3, "Metadata_Center_Y", fov.centres[keep, 1])
        crops_all.append(crops)
        rows_all.append(rows)
        have += len(keep)
        site += 1
    return crops_all, rows_all, site


def simulate_well(plan: WellPlan, *, config: SimulationConfig) -> tuple[np.ndarray, pd.DataFrame]:
    """Crops (n, 3, S, S) uint8 and their rows (metadata, features, truth) for one well."""
    seed = config.screen.seed
    rng = np.random.default_rng([seed, plan.plate_index, plan.index, 1])
    plate = PlateEffect.draw(np.random.default_rng([seed, plan.plate_index, 2]))
    images: list[np.ndarray] = []
    frames: list[pd.DataFrame] = []
    have, site = 0, 1
    while have < plan.n_cells:
        crops_l, rows_l, site = _render_until(rng, plan, plate, config, plan.n_cells - have, site)
        crops = np.concatenate(crops_l)
        rows = pd.concat(rows_l, ignore_index=True)
        need = plan.n_cells - have
        spare = need + int(np.ceil(0.15 * need)) + 2  # measure a few spare crops for segmentation failures
        if len(rows) > spare:  # a random subset, so the last field's layout does not bias the well
            idx = np.sort(rng.choice(len(rows), spare, replace=False))
            crops, rows = crops[idx], rows.iloc[idx].reset_index(drop=True)
        if config.measure:
            from cp2image.features import measure

            feats = measure(crops, n_jobs=1)
            feats = feats.drop(columns=[FAILED_COLUMN]).astype(config.features_dtype)
            ok = np.isfinite(feats.to_numpy()).all(axis=1)  # failed segmentation or an undefined feature
            rows = pd.concat([rows, feats], axis=1)
            crops, rows = crops[ok], rows[ok].reset_index(drop=True)
        take = min(len(rows), need)
        if take < len(rows):
            idx = np.sort(rng.choice(len(rows), take, replace=False))
            crops, rows = crops[idx], rows.iloc[idx].reset_index(drop=True)
        images.append(crops)
        frames.append(rows)
        have += take
    rows = pd.concat(frames, ignore_index=True)
    t = plan.treatment
    meta = pd.DataFrame({
        "Metadata_Plate": plan.plate,
        "Metadata_Well": plan.well,
        "Metadata_Replicate": plan.replicate,
        "Metadata_Compound": t.compound,
        "Metadata_Concentration": float(t.concentration),
        "Metadata_MoA": t.moa,
    }, index=rows.index)
    if config.measure:
        rows[FAILED_COLUMN] = False
    return np.concatenate(images), pd.concat([meta, rows], axis=1)


def _simulate_well_task(plan: WellPlan, *, config: SimulationConfig) -> tuple[np.ndarray, pd.DataFrame]:
    """One dask task: a well's plan in, its crops and rows out (module level, so it pickles)."""
    return simulate_well(plan, config=config)


def iter_wells(
    config: SimulationConfig,
    *,
    client: "Client | None" = None,
    plans: Sequence[WellPlan] | None = None,
) -> Iterator[tuple[WellPlan, np.ndarray, pd.DataFrame]]:
    """Yield (plan, crops, rows) well by well in plan order.

    With a dask `client` every well is a task (at most two per worker thread in
    flight); without, wells run one after another in this process. `plans`
    defaults to every non-empty well of the screen.
    """
    if plans is None:
        plans = [p for p in plan_screen(config.screen) if p.n_cells > 0]  # fewer cells than wells: skip empty ones
    if client is None:
        for plan in plans:
            yield (plan, *simulate_well(plan, config=config))
        return
    from cp2image.distributed import ordered_results

    for plan, (crops, rows) in ordered_results(client, partial(_simulate_well_task, config=config), plans):
        yield plan, crops, rows


def _well_splits(config: ScreenConfig) -> dict[tuple[str, str], str]:
    plans = plan_screen(config)
    wells = pd.DataFrame({
        "Metadata_Plate": [p.plate for p in plans],
        "Metadata_Well": [p.well for p in plans],
        "Metadata_Compound": [p.treatment.compound for p in plans],
        "Metadata_Concentration": [p.treatment.concentration for p in plans],
    })
    split = assign_splits_by_well(wells, seed=config.seed)
    return {(p, w): s for p, w, s in zip(wells["Metadata_Plate"], wells["Metadata_Well"], split)}


def simulation_meta(config: SimulationConfig) -> dict[str, Any]:
    """Provenance stored in dataset.json."""
    from cp2image import __version__

    return {
        "provenance": {
            "source": "cp2image simulate (virtual BBBC021)",
            "seed": config.screen.seed,
            "n_cells": config.screen.n_cells,
            "version": __version__,
            "screen": asdict(config.screen),
            "render": asdict(config.render),
            "features_measured": config.measure,
            # what `cp2image evaluate --stored-real-features` checks, as the ingest commands write it
            "features": "cp2image.features.measure" if config.measure else None,
        },
    }


def config_fingerprint(config: SimulationConfig) -> str:
    """A digest of everything that determines the dataset: a resumed run must match it."""
    from cp2image import __version__

    text = json.dumps({"config": asdict(config), "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def simulate_screen(
    path: str | os.PathLike,
    config: SimulationConfig,
    *,
    jobs: int = 1,
    cluster: "ClusterConfig | None" = None,
    packed: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    resume: bool = True,
) -> Path:
    """Simulate the screen into a dataset directory at `path` and return it.

    Wells run as dask tasks on `cluster` (a LocalCluster or an existing scheduler);
    without one, `jobs > 1` starts a LocalCluster of that many workers and
    `jobs == 1` runs the wells in this process. Images stream into `images.npy`
    and rows into parquet parts well by well; with `packed=True` they are
    compressed into `images.npz` at the end (for the bundled slice).
    With `resume` (default), unfinished work left by a killed run with the same
    configuration is continued instead of started again.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite) to replace it")
    if cluster is None and jobs > 1:
        from cp2image.distributed import ClusterConfig

        cluster = ClusterConfig(n_workers=jobs)
    if cluster is None:
        return _simulate_into(target, config, client=None, packed=packed, overwrite=overwrite,
                              progress=progress, resume=resume)
    from cp2image.distributed import dask_client

    with ExitStack() as cluster_up:
        client = cluster_up.enter_context(dask_client(cluster))
        return _simulate_into(target, config, client=client, packed=packed, overwrite=overwrite,
                              progress=progress, resume=resume, release=cluster_up.close)


def _simulate_into(target: Path, config: SimulationConfig, *, client: "Client | None", packed: bool,
                   overwrite: bool, progress: bool, resume: bool, release: Callable[[], None] | None = None) -> Path:
    """Stream every well into the writer. `release` (stop the LocalCluster / drop the client) is called
    once the last well is in, before the writer merges its parts: the workers' memory (≈ 400 MB each)
    is then free while the merge, the command's largest step in memory, runs."""
    splits = _well_splits(config.screen)
    build = target.parent / f".{target.name}.unpacked" if packed else target
    meta = simulation_meta(config)
    plans = [p for p in plan_screen(config.screen) if p.n_cells > 0]
    key = config_fingerprint(config)
    if not resume:
        shutil.rmtree(build.parent / f".{build.name}.partial", ignore_errors=True)
    bar = None
    try:
        with DatasetWriter(build, config.screen.n_cells, crop_size=config.render.crop_size, meta=meta,
                           overwrite=overwrite or packed, resume_key=key) as writer:
            done = set(writer.done)
            if done:
                # a warning, so that the command line shows it: the output mixes this run's work with an earlier one's
                log.warning("resuming %s: %d of %d wells already written", target, len(done), len(plans))
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=config.screen.n_cells, initial=writer.count, unit="cell", desc="simulating")
            todo = [p for p in plans if str(p.index) not in done]
            for plan, crops, rows in iter_wells(config, client=client, plans=todo):
                rows["Metadata_Split"] = splits[(plan.plate, plan.well)]
                writer.append(crops, rows, unit=str(plan.index))
                if bar is not None:
                    bar.update(len(rows))
            if release is not None:
                release()
        if packed:
            ds = open_dataset(build)
            write_dataset(target, ds.images, ds.cells, ds.meta, overwrite=overwrite, packed=True)
            shutil.rmtree(build, ignore_errors=True)
    finally:
        if bar is not None:
            bar.close()
    log.info("simulated %d cells into %s", config.screen.n_cells, target)
    return target

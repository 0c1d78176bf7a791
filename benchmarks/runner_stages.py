"""The stages the runner measures, one function per stage (see run.py).

Each section function returns `Row`s; names listed by its `names` function must all be
produced (the quick-run test checks that). Stage code is imported from `cp2image` and
from each stage's own `benchmarks/bench_<area>.py` where it offers a bench function.
"""
from __future__ import annotations

import importlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from runner_support import (
    Row,
    Section,
    count_flops,
    matmul_peak,
    rate_row,
    run_python_json,
    time_call,
    time_row,
    unavailable,
)

PAPER_SECONDS_PER_IMAGE = 0.02  # CP2Image paper, GPU, per generated image


# ----------------------------------------------------------------------------- shared fixtures


REFERENCE_FEATURES = 453  # the paper's p


def _reference_model():
    """A CP2Image at the reference config (p = 453, 32 filters, kernel 5), untrained.

    Same architecture and FLOPs as the bundled model; used only while no trained
    weights are available, and said so in the row's note.
    """
    from cp2image.models import CP2Image, CP2ImageConfig

    names = [f"Nuclei_Reference_{i}" for i in range(REFERENCE_FEATURES)]
    config = CP2ImageConfig(feature_names=names, feature_mean=[0.0] * len(names),
                            feature_scale=[1.0] * len(names))
    return CP2Image(config).eval()


def _bundled_model(ctx) -> Any:
    """The bundled CP2Image (shared, eval mode), loaded the way the app loads it."""
    if "model" not in ctx.cache:
        try:
            from cp2image.models.hub import load_model

            loaded = load_model(None)
            ctx.cache["model"], ctx.cache["model_source"] = loaded.model, loaded.source
        except Exception as err:  # weights not bundled yet: same architecture, random weights
            ctx.cache["model"] = _reference_model()
            ctx.cache["model_source"] = f"reference config, untrained ({type(err).__name__}: no bundled model)"
    return ctx.cache["model"]


def _bundled_dataset(ctx) -> Any:
    if "dataset" not in ctx.cache:
        from cp2image.assets import bundled_dataset_dir
        from cp2image.data import open_dataset

        ctx.cache["dataset"] = open_dataset(bundled_dataset_dir())
    return ctx.cache["dataset"]


def _profiles(ctx, n: int) -> np.ndarray:
    """`n` profiles (raw units, model feature order): real bundled cells when the model
    and dataset agree, else draws from the model's stored feature distribution."""
    model = _bundled_model(ctx)
    try:
        cells = _bundled_dataset(ctx).cells
        table = cells[model.feature_names].to_numpy(dtype=np.float64)
        table = table[np.isfinite(table).all(axis=1)]
        reps = int(np.ceil(n / len(table)))
        return np.tile(table, (reps, 1))[:n]
    except Exception:
        mean = np.asarray(model.config.feature_mean)
        scale = np.asarray(model.config.feature_scale)
        return np.random.default_rng(0).normal(mean, scale, size=(n, len(mean)))


def _bench_module(area: str):
    """A stage engineer's `benchmarks/bench_<area>.py`, imported (never copied)."""
    return importlib.import_module(f"bench_{area}")


def _quiet(fn):
    def wrapped():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    return wrapped


# ----------------------------------------------------------------------------- peak

PEAK_N = 2048


def peak_names(ctx) -> list[str]:
    return [f"fp32 matmul peak ({PEAK_N}×{PEAK_N})"]


def peak_run(ctx) -> list[Row]:
    timing, flops = matmul_peak(n=PEAK_N, repeats=max(ctx.repeats, 3))
    ctx.peak_gflops = flops / timing.min / 1e9  # the best repeat is the peak
    row = Row("Reference", peak_names(ctx)[0], unit="GFLOP/s",
              median=flops / timing.median / 1e9, min=flops / max(timing.seconds) / 1e9,
              note=f"torch.matmul; peak used for ratios = best repeat = {ctx.peak_gflops:.0f} GFLOP/s")
    return [row]


# ----------------------------------------------------------------------------- generation


def _gen_batches(ctx) -> list[int]:
    return [1, 256] if ctx.quick else [1, 4, 16, 64, 128, 256, 512]


def _thread_counts() -> list[int]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return sorted({1, cores})


def generation_names(ctx) -> list[str]:
    return (["latency, batch 1", "throughput, batch 256"]
            + [f"throughput vs batch: {b}" for b in _gen_batches(ctx)]
            + [f"batch 256 vs torch threads: {t}" for t in _thread_counts()])


def _generation_flops_per_image(ctx, model, profiles: np.ndarray) -> float:
    if "gen_flops" not in ctx.cache:
        batch = profiles[:8]
        total = count_flops(_quiet(lambda: model.generate(batch, batch_size=len(batch))))
        ctx.cache["gen_flops"] = total / len(batch)
    return ctx.cache["gen_flops"]


def generation_run(ctx) -> list[Row]:
    import torch

    model = _bundled_model(ctx)
    profiles = _profiles(ctx, 512)
    flops_per_image = _generation_flops_per_image(ctx, model, profiles)
    rows: list[Row] = []
    one = profiles[:1]
    with torch.inference_mode():
        t1 = time_call(_quiet(lambda: model.generate(one, batch_size=1)),
                       repeats=ctx.repeats, number=3 if ctx.quick else 20)
    rows.append(time_row("Generation", "latency, batch 1", t1, unit="ms/image",
                         ratio=PAPER_SECONDS_PER_IMAGE / t1.median, reference="× the paper's speed (20 ms/image, GPU)",
                         note=f"model.generate, {ctx.cache.get('model_source', '')}"))
    by_batch: dict[int, Row] = {}
    for b in sorted(set(_gen_batches(ctx)) | {256}):
        batch = profiles[:b]
        number = max(1, 8 // b) if ctx.quick else max(1, 64 // b)
        with torch.inference_mode():
            t = time_call(_quiet(lambda: model.generate(batch, batch_size=b)),
                          repeats=ctx.repeats, number=number)
        gflops = flops_per_image * b / t.median / 1e9
        frac = ctx.fraction_of_peak(gflops)
        by_batch[b] = rate_row("Generation", f"throughput vs batch: {b}", t, items=b, unit="images/s",
                               ratio=frac, reference="of fp32 peak",
                               note=f"{gflops:.0f} GFLOP/s achieved")
    main = by_batch[256]
    frac = main.ratio
    rows.append(Row("Generation", "throughput, batch 256", unit="images/s", median=main.median,
                    min=main.min, ratio=frac, reference="of fp32 peak", target="≥ 0.5 of peak",
                    met=None if frac is None else frac >= 0.5,
                    note=(f"{flops_per_image / 1e9:.3f} GFLOP/image (FlopCounterMode); "
                          f"{1e3 / main.median:.2f} ms/image = "
                          f"{PAPER_SECONDS_PER_IMAGE * main.median:.0f}× the paper's 20 ms")))
    rows.extend(by_batch[b] for b in _gen_batches(ctx))
    rows.extend(_generation_vs_threads(ctx, model, profiles[:256], flops_per_image))
    return rows


def _generation_vs_threads(ctx, model, batch: np.ndarray, flops_per_image: float) -> list[Row]:
    """Batch-256 throughput at each intra-op thread count, against the matmul peak at that
    same thread count measured just before (on a shared machine one thread can win)."""
    import torch

    before = torch.get_num_threads()
    rows = []
    try:
        for threads in _thread_counts():
            torch.set_num_threads(threads)
            timing, flops = matmul_peak(n=PEAK_N, repeats=3)
            peak = flops / timing.min / 1e9
            with torch.inference_mode():
                t = time_call(_quiet(lambda: model.generate(batch, batch_size=len(batch))),
                              repeats=1 if ctx.quick else ctx.repeats)
            gflops = flops_per_image * len(batch) / t.median / 1e9
            rows.append(rate_row("Generation", f"batch 256 vs torch threads: {threads}", t, items=len(batch),
                                 unit="images/s", ratio=gflops / peak,
                                 reference=f"of the {threads}-thread peak",
                                 note=f"{gflops:.0f} GFLOP/s; {threads}-thread matmul peak {peak:.0f} GFLOP/s"))
    finally:
        torch.set_num_threads(before)
    return rows


# ----------------------------------------------------------------------------- training

TRAIN_BATCH = 104  # the original work's batch size


def _train_batches(ctx) -> list[int]:
    return [8, TRAIN_BATCH] if ctx.quick else [16, 32, 64, TRAIN_BATCH, 208]


def training_names(ctx) -> list[str]:
    return ([f"throughput, batch {TRAIN_BATCH}", "step FLOP/s"]
            + [f"throughput vs batch: {b}" for b in _train_batches(ctx)])


STEADY_STEP = 10_000  # a step index after every γ_i has ramped in (full generator loss)


def _training_data(ctx) -> tuple[Any, str]:
    """(dataset, note): the bundled dataset, else a synthetic one of the same crop format."""
    if "train_data" not in ctx.cache:
        try:
            ctx.cache["train_data"] = (_bundled_dataset(ctx), "bundled dataset")
        except Exception:
            from cp2image.data import open_dataset, write_dataset

            n = 2048
            rng = np.random.default_rng(0)
            import pandas as pd

            cells = pd.DataFrame(rng.normal(size=(n, REFERENCE_FEATURES)),
                                 columns=[f"Nuclei_Reference_{i}" for i in range(REFERENCE_FEATURES)])
            cells["Metadata_Plate"], cells["Metadata_Well"] = "P1", "B02"
            cells["Metadata_Compound"], cells["Metadata_Concentration"] = "DMSO", 0.0
            cells["Metadata_Split"] = "train"
            images = rng.integers(0, 256, size=(n, 3, 68, 68), dtype=np.uint8)
            tmp = Path(tempfile.mkdtemp(prefix="cp2image-bench-"))
            ctx.cache["train_data"] = (open_dataset(write_dataset(tmp / "synthetic", images, cells)),
                                       f"synthetic {n}-cell dataset (bundled dataset absent)")
    return ctx.cache["train_data"]


def _training_setup(ctx, *, batch_size: int, device: str = "cpu", bf16: bool = False,
                    compile: bool = False):
    """The trainer's own objective (G + D, optimisers) and a real batch from its loader classes."""
    import torch

    from cp2image.models.cp2image import CP2ImageConfig
    from cp2image.training import runtime as rt_mod
    from cp2image.training.config import TrainConfig
    from cp2image.training.data import CellBatches, images_file, prepare_features, training_rows
    from cp2image.training.objectives import OBJECTIVES

    dataset, note = _training_data(ctx)
    config = TrainConfig(batch_size=batch_size, device=device, amp="bf16" if bf16 else "off",
                         compile=compile, progress=False)
    runtime = rt_mod.start(device=device, amp=config.amp, channels_last=config.channels_last)
    rows = training_rows(dataset, config.split)
    table = prepare_features(dataset, rows, features=config.features,
                             max_nonfinite_fraction=config.max_nonfinite_fraction)
    model_config = CP2ImageConfig(feature_names=table.names, feature_mean=table.mean.tolist(),
                                  feature_scale=table.scale.tolist(), image_size=int(dataset.images.shape[-1]),
                                  channels=dataset.channels)
    torch.manual_seed(0)
    objective = OBJECTIVES["cp2image"](config, runtime, model_config)
    objective.finalise(torch.compile if compile else (lambda net: net))
    features_path = Path(tempfile.mkdtemp(prefix="cp2image-bench-")) / "features.npy"
    from cp2image.training.data import write_feature_matrix

    write_feature_matrix(features_path, table.standardised)
    batches = CellBatches(images_file(dataset), table.rows, features_path)
    n = len(table.rows)
    pick = np.random.default_rng(0)
    batch = batches[(np.sort(pick.choice(n, batch_size, replace=n < batch_size)),
                     np.sort(pick.choice(n, batch_size, replace=n < batch_size)))]
    return objective, batch, batches, table, f"{note}, p = {len(table.names)}"


def measure_training_step(ctx, *, batch_size: int, steps: int, device: str = "cpu", bf16: bool = False,
                          compile: bool = False) -> dict[str, Any]:
    """Seconds per full training step (D update + G update with every hidden loss on)."""
    import torch

    objective, batch, _, _, note = _training_setup(ctx, batch_size=batch_size, device=device,
                                                   bf16=bf16, compile=compile)
    for net in objective.nets.values():
        net.train()
    step = lambda: objective.step(batch, STEADY_STEP)  # noqa: E731
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    # A step's FLOPs are exactly proportional to the batch: count once per sample (at batch 8).
    key = f"train_flops_per_sample:{device}"
    if key not in ctx.cache and not compile:
        small = {k: v[:8] for k, v in batch.items()}
        ctx.cache[key] = count_flops(lambda: objective.step(small, STEADY_STEP)) / 8
    flops = ctx.cache[key] * batch_size if key in ctx.cache else None
    timing = time_call(step, repeats=steps, warmup=2 if compile else (0 if ctx.quick else 1), sync=sync)
    return {"median_s": timing.median, "max_s": max(timing.seconds), "flops_per_step": flops, "note": note}


def training_run(ctx) -> list[Row]:
    rows: list[Row] = []
    results = {b: measure_training_step(ctx, batch_size=b, steps=1 if ctx.quick else min(ctx.repeats, 3))
               for b in sorted(set(_train_batches(ctx)) | {TRAIN_BATCH})}
    for b in _train_batches(ctx):
        res = results[b]
        frac = ctx.fraction_of_peak(res["flops_per_step"] / res["median_s"] / 1e9)
        rows.append(Row("Training", f"throughput vs batch: {b}", unit="samples/s",
                        median=b / res["median_s"], min=b / res["max_s"], ratio=frac,
                        reference="of fp32 peak"))
    res = results[TRAIN_BATCH]
    ctx.train_samples_per_s = TRAIN_BATCH / res["median_s"]
    gflops = res["flops_per_step"] / res["median_s"] / 1e9
    frac = ctx.fraction_of_peak(gflops)
    rows.insert(0, Row("Training", f"throughput, batch {TRAIN_BATCH}", unit="samples/s",
                       median=ctx.train_samples_per_s, min=TRAIN_BATCH / res["max_s"],
                       note=f"trainer's CP2ImageObjective.step at steady state (all γ_i on); {res['note']}"))
    rows.insert(1, Row("Training", "step FLOP/s", unit="GFLOP/s", median=gflops,
                       min=res["flops_per_step"] / res["max_s"] / 1e9, ratio=frac,
                       reference="of fp32 peak", target="≥ 0.3 of peak",
                       met=None if frac is None else frac >= 0.3,
                       note=f"{res['flops_per_step'] / 1e9:.1f} GFLOP per step (G + D, forward + backward, "
                            "FlopCounterMode)"))
    return rows


# ----------------------------------------------------------------------------- loader


def loader_names(ctx) -> list[str]:
    return ["data loader throughput"]


def loader_run(ctx) -> list[Row]:
    """The trainer's DataLoader (CellBatches + PairedSampler, default workers) without training."""
    from torch.utils.data import DataLoader

    from cp2image.training.config import TrainConfig
    from cp2image.training.data import PairedSampler, StepSampler

    _, _, batches, table, note = _training_setup(ctx, batch_size=TRAIN_BATCH)
    config = TrainConfig()
    n_steps = 10 if ctx.quick else 50

    def iterate():
        sampler = PairedSampler(
            StepSampler(len(table.rows), global_batch=TRAIN_BATCH, start_step=0, end_step=n_steps, seed=0, stream=0),
            StepSampler(len(table.rows), global_batch=TRAIN_BATCH, start_step=0, end_step=n_steps, seed=0, stream=1))
        for _ in DataLoader(batches, sampler=sampler, batch_size=None, num_workers=config.num_workers):
            pass

    timing = time_call(iterate, repeats=ctx.repeats)
    row = rate_row("Data loader", "data loader throughput", timing, items=n_steps * TRAIN_BATCH,
                   unit="samples/s", target="≥ 3× training",
                   note=f"trainer's DataLoader, num_workers={config.num_workers}, memory-mapped crops; {note}")
    if ctx.train_samples_per_s:
        row.ratio, row.reference = row.median / ctx.train_samples_per_s, "× training's need"
        row.met = row.ratio >= 3
    return [row]


# ----------------------------------------------------------------------------- features


def _feature_workers(ctx) -> list[int]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return sorted({1, cores})


def features_names(ctx) -> list[str]:
    return ["measure, all cores"] + [f"crops/s vs workers: {w}" for w in _feature_workers(ctx)]


def _feature_crops(ctx, n: int) -> tuple[np.ndarray, str]:
    """`n` crops from the bundled dataset, else freshly simulated (render only, no features)."""
    try:
        return np.asarray(_bundled_dataset(ctx).images[:n]), "bundled crops"
    except Exception:
        from cp2image.data import open_dataset
        from cp2image.data.simulate.pipeline import SimulationConfig, simulate_screen
        from cp2image.data.simulate.screen import ScreenConfig

        tmp = Path(tempfile.mkdtemp(prefix="cp2image-bench-")) / "sim"
        simulate_screen(tmp, SimulationConfig(screen=ScreenConfig(n_cells=n, replicates=1), measure=False))
        return np.asarray(open_dataset(tmp).images), "freshly simulated crops (bundled dataset absent)"


def features_run(ctx) -> list[Row]:
    """Crops/s of `measure` on a dask LocalCluster of w worker processes (as `cp2image features`
    runs it); the cluster is started and warmed before timing, so its start-up is not counted."""
    from cp2image.distributed import ClusterConfig, dask_client
    from cp2image.features import measure

    images, source = _feature_crops(ctx, 64 if ctx.quick else 400)
    n = len(images)
    rows = []
    by_workers = {}
    for w in _feature_workers(ctx):
        with dask_client(ClusterConfig(n_workers=w)) as client:
            measure(images[:4], client=client)  # warm-up: imports, JIT caches on the workers
            t = time_call(lambda: measure(images, client=client), repeats=1 if ctx.quick else 2, warmup=0)
        by_workers[w] = rate_row("Features", f"crops/s vs workers: {w}", t, items=n, unit="crops/s")
    best = by_workers[max(by_workers)]
    rows.append(Row("Features", "measure, all cores", unit="crops/s", median=best.median, min=best.min,
                    target="≥ 200 crops/s", met=best.median >= 200,
                    note=f"cp2image.features.measure on {n} {source} as dask tasks (LocalCluster, "
                         f"{max(by_workers)} workers, started before timing), {len(measure(images[:1]).columns) - 1} features; "
                         f"load average {os.getloadavg()[0]:.1f}"))
    base = by_workers[1].median
    for w, r in by_workers.items():
        r.ratio, r.reference = r.median / base, "× 1 worker"
        rows.append(r)
    return rows


# ----------------------------------------------------------------------------- simulator


def _sim_sizes(ctx) -> list[int]:
    return [100, 400] if ctx.quick else [1000, 3000, 9000]


def simulator_names(ctx) -> list[str]:
    full_path = [] if ctx.quick else ["render + segment + measure"]  # = render + features rows in --quick
    return (["render only"] + full_path + [f"peak RSS vs cells: {n}" for n in _sim_sizes(ctx)])


def simulator_run(ctx) -> list[Row]:
    """The simulator engineer's fresh-process runner (bench_simulator.run_child): each
    figure from its own interpreter, so peak RSS is that run's own. Each run includes a
    fixed start-up (texture bank, imports), so small runs understate the per-cell rate."""
    bench = _bench_module("simulator")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    sizes = _sim_sizes(ctx)
    if ctx.quick:  # two fresh processes side by side: peak RSS is per process, so unaffected
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(sizes)) as pool:
            futures = {n: pool.submit(bench.run_child, n, measure=False, jobs=1, replicates=1) for n in sizes}
            results = {n: f.result() for n, f in futures.items()}
    else:
        results = {n: bench.run_child(n, measure=False, jobs=1, replicates=1) for n in sizes}
    if ctx.quick:  # the largest memory run doubles as the rate run
        n_rate, jobs_rate, render = sizes[-1], 1, results[sizes[-1]]
    else:
        n_rate, jobs_rate = 3000, cores
        render = bench.run_child(n_rate, measure=False, jobs=cores, replicates=1)
    rows: list[Row] = []
    rate = render["cells"] / render["wall"]
    rows.append(Row("Simulator", "render only", unit="cells/s", median=rate, min=rate,
                    ratio=render["cells"] / render["cpu"], reference="cells per CPU-second",
                    target="≥ 1,000 cells/s", met=rate >= 1000,
                    note=f"simulate_screen(measure=False), {n_rate} cells, jobs={jobs_rate}, one run incl. start-up"
                         + (" (ran beside the other memory run)" if ctx.quick else "")))
    if not ctx.quick:
        n_full = 400
        full = bench.run_child(n_full, measure=True, jobs=cores, replicates=1)
        rate = full["cells"] / full["wall"]
        rows.append(Row("Simulator", "render + segment + measure", unit="cells/s", median=rate, min=rate,
                        ratio=full["cells"] / full["cpu"], reference="cells per CPU-second",
                        target="≥ 150 cells/s", met=rate >= 150,
                        note=f"simulate_screen, {n_full} cells, jobs={cores} (crop → segment → measure, as real "
                             "images), incl. start-up"))
    smallest = min(results)
    base = results[smallest]["peak_mb"]
    for n in sizes:
        r = results[n]
        ratio = r["peak_mb"] / base
        rows.append(Row("Simulator", f"peak RSS vs cells: {n}", unit="MB", median=r["peak_mb"],
                        min=r["peak_mb"], ratio=ratio, reference=f"× at {smallest} cells",
                        target="flat (≤ 1.25×)", met=ratio <= 1.25,
                        note="render only, jobs=1; images streamed to the memmap"))
    return rows


# ----------------------------------------------------------------------------- analysis


def analysis_names(ctx) -> list[str]:
    return ["perturbation strip, 9 images", "perturbation strip, 1 torch thread", "perturbation strip + measure back",
            "MoA interpolation", "PCA trajectory line, 9 images"]


def analysis_run(ctx) -> list[Row]:
    import torch

    from cp2image.analysis import interpolate, perturb, trajectory
    from cp2image.assets import bundled_dataset_dir, bundled_model_dir

    bench = _bench_module("analysis")  # its loader: bundled assets, else reference-size stand-ins
    model, cells, note = bench.load(bundled_model_dir(), bundled_dataset_dir())
    feats = list(model.feature_names)
    feature = bench.FEATURE
    dmso = cells.loc[cells["Metadata_Compound"] == "DMSO"].dropna(subset=feats)
    profile = dmso.iloc[0]
    reps = ctx.repeats
    rows = []
    with torch.inference_mode():
        t = time_call(_quiet(lambda: perturb.sweep_feature(model, profile, feature, mode="single", reference=dmso,
                                                           measure_back=False)),
                      repeats=reps, number=3)
        rows.append(time_row("Analysis", "perturbation strip, 9 images", t, target="≤ 150 ms",
                             met=t.median <= 0.150, note=f"sweep_feature, generation included; {note}"))
        before = torch.get_num_threads()
        torch.set_num_threads(1)  # on a busy machine one intra-op thread avoids OpenMP spin-waits
        try:
            t = time_call(_quiet(lambda: perturb.sweep_feature(model, profile, feature, mode="single", reference=dmso,
                                                               measure_back=False)),
                          repeats=reps, number=3)
        finally:
            torch.set_num_threads(before)
        rows.append(time_row("Analysis", "perturbation strip, 1 torch thread", t, target="≤ 150 ms",
                             met=t.median <= 0.150, note="same call, torch.set_num_threads(1)"))
        t = time_call(_quiet(lambda: perturb.sweep_feature(model, profile, feature, mode="single", reference=dmso,
                                                           measure_back=True)), repeats=1 if ctx.quick else reps)
        rows.append(time_row("Analysis", "perturbation strip + measure back", t,
                             note="adds cp2image.features.measure of the 9 images"))
        moas = sorted(m for m in cells["Metadata_MoA"].dropna().unique() if m != "DMSO")
        target = "Actin disruptors" if "Actin disruptors" in moas else moas[0]
        t = time_call(_quiet(lambda: interpolate.interpolate_to_moa(model, cells, target_moa=target)),
                      repeats=1 if ctx.quick else reps)
        rows.append(time_row("Analysis", "MoA interpolation", t, note=f"DMSO → {target}, all steps with images"))
        traj = trajectory.CompoundTrajectory.fit(cells, features=feats)
        end = 3.0 if 3.0 in traj.concentrations else traj.concentrations[-1]
        t = time_call(_quiet(lambda: model.generate(traj.line(9, end_concentration=end)[feats])),
                      repeats=reps, number=3)
        rows.append(time_row("Analysis", "PCA trajectory line, 9 images", t,
                             note=f"DMSO → latrunculin B {end:g} µM, generation included"))
    return rows


# ----------------------------------------------------------------------------- app

APP_PAGES = ("Home", "Feature perturbation", "PCA explorer", "MoA interpolation",
             "Correlation report", "Generate from your profiles", "Model card")


def app_names(ctx) -> list[str]:
    return [f"server time: {p}" for p in APP_PAGES] + ["cold start"]


def app_run(ctx) -> list[Row]:
    bench = _bench_module("app")
    results = bench.measure_interactions(quick=ctx.quick, repeats=ctx.repeats)
    rows = []
    for page in APP_PAGES:
        res = results[page]
        seconds = res["seconds"]
        median = float(np.median(seconds))
        rows.append(Row("App", f"server time: {page}", unit="ms", median=median * 1e3,
                        min=min(seconds) * 1e3, target="≤ 300 ms", met=median <= 0.300,
                        note=res.get("action", "")))
    cold = results["cold start"]
    rows.append(Row("App", "cold start", unit="s", median=float(np.median(cold["seconds"])),
                    min=min(cold["seconds"]), target="< 10 s",
                    met=float(np.median(cold["seconds"])) < 10, note=cold.get("action", "")))
    return rows


SESSIONS = 20


def sessions_names(ctx) -> list[str]:
    return ["server RSS, no session", "server RSS, 1 session", f"server RSS, {SESSIONS} sessions",
            f"server RSS peak, {SESSIONS} sessions at once", "RSS per extra session"]


def sessions_run(ctx) -> list[Row]:
    """Real server + headless Chromium tabs (benchmarks/app_sessions.py)."""
    import app_sessions

    res = app_sessions.measure(SESSIONS)
    note = f"{res['assets']}; each session runs a 9-image perturbation"
    values = [res["rss_idle_mb"], res["rss_one_session_mb"], res["rss_all_sessions_mb"], res["rss_peak_mb"],
              res["rss_per_extra_session_mb"]]
    rows = [Row("App sessions", name, unit="MB", median=v, min=v, note=note)
            for name, v in zip(sessions_names(ctx), values)]
    rows[-1].ratio = res["rss_per_extra_session_mb"] / res["rss_one_session_mb"]
    rows[-1].reference = "of the 1-session RSS"
    rows[-1].target, rows[-1].met = "model shared (≪ 1-session RSS)", rows[-1].ratio < 0.1
    return rows


# ----------------------------------------------------------------------------- GPU


def gpu_names(ctx) -> list[str]:
    return ["fp32 matmul peak", "bf16 matmul peak", "generation batch 256, fp32",
            "generation batch 256, bf16 autocast", "generation batch 256, torch.compile",
            f"training batch {TRAIN_BATCH}, fp32", f"training batch {TRAIN_BATCH}, bf16 autocast",
            f"training batch {TRAIN_BATCH}, torch.compile"]


def gpu_run(ctx) -> list[Row]:
    return accelerator_rows(ctx, device="cuda")


def accelerator_rows(ctx, *, device: str) -> list[Row]:
    """Peak, generation and training on `device` in fp32, bf16 autocast and torch.compile.

    Runs for "cuda" when a GPU is present; `run.py --accelerator-dry-run` runs the same
    code on the CPU with a small matmul so that the branch is exercised without a GPU.
    """
    import copy

    import torch

    on_cuda = device.startswith("cuda")
    rows: list[Row] = []
    sync = torch.cuda.synchronize if on_cuda else None
    where = (f"{torch.cuda.get_device_name(0)}; TF32 {torch.backends.cuda.matmul.allow_tf32}"
             if on_cuda else f"dry run on {device}")
    n = (4096 if ctx.quick else 8192) if on_cuda else 512
    for dtype in ("float32", "bfloat16"):
        timing, flops = matmul_peak(n=n, repeats=ctx.repeats, device=device, dtype_name=dtype)
        ctx.gpu_peak_gflops[dtype] = flops / timing.min / 1e9
        name = "fp32 matmul peak" if dtype == "float32" else "bf16 matmul peak"
        rows.append(Row("GPU", name, unit="GFLOP/s", median=flops / timing.median / 1e9,
                        min=flops / max(timing.seconds) / 1e9, note=where))
    cpu_model = _bundled_model(ctx)
    batch = 256 if on_cuda else 16
    profiles = _profiles(ctx, batch)
    net = copy.deepcopy(cpu_model).to(device).eval()
    forward = _generator_forward(net)
    x = torch.as_tensor(_normalised(cpu_model, profiles), device=device)
    flops_img = ctx.cache.get("gen_flops") or count_flops(lambda: forward(x[:8])) / 8
    variants = {
        "generation batch 256, fp32": (forward, None),
        "generation batch 256, bf16 autocast": (forward, torch.bfloat16),
        "generation batch 256, torch.compile": (torch.compile(forward), None),
    }
    for name, (fn, amp) in variants.items():
        def call(fn=fn, amp=amp):
            with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=amp or torch.bfloat16,
                                                        enabled=amp is not None):
                fn(x)
        t = time_call(call, repeats=ctx.repeats, warmup=3, number=10 if on_cuda else 1, sync=sync)
        peak = ctx.gpu_peak_gflops["bfloat16" if amp else "float32"]
        gflops = flops_img * batch / t.median / 1e9
        rows.append(rate_row("GPU", name, t, items=batch, unit="images/s", ratio=gflops / peak,
                             reference="of same-dtype peak", note=f"{gflops:.0f} GFLOP/s; batch {batch}"))
    train_batch = TRAIN_BATCH if on_cuda else 8
    for name, opts in {f"training batch {TRAIN_BATCH}, fp32": {},
                       f"training batch {TRAIN_BATCH}, bf16 autocast": {"bf16": True},
                       f"training batch {TRAIN_BATCH}, torch.compile": {"compile": True}}.items():
        res = measure_training_step(ctx, batch_size=train_batch, steps=ctx.repeats + (3 if on_cuda else 0),
                                    device=device, **opts)
        peak = ctx.gpu_peak_gflops["bfloat16" if opts.get("bf16") else "float32"]
        gflops = res["flops_per_step"] / res["median_s"] / 1e9
        rows.append(Row("GPU", name, unit="samples/s", median=train_batch / res["median_s"],
                        min=train_batch / res["max_s"], ratio=gflops / peak,
                        reference="of same-dtype peak", note=f"{gflops:.0f} GFLOP/s; batch {train_batch}"))
    return rows


def _generator_forward(net):
    """The network call under model.generate (normalised features → image tensor)."""
    for attr in ("generator", "net"):
        if hasattr(net, attr):
            return getattr(net, attr)
    return net


def _normalised(model, profiles: np.ndarray) -> np.ndarray:
    if hasattr(model, "normalise"):
        return np.asarray(model.normalise(profiles), dtype=np.float32)
    return profiles.astype(np.float32)


# ----------------------------------------------------------------------------- feature control


def control_names(ctx) -> list[str]:
    return _bench_module("control").names(ctx)


def control_run(ctx) -> list[Row]:
    """Issue 13's control table (benchmarks/bench_control.py): coupled/single slope and ρ per feature."""
    return _bench_module("control").run(ctx)


# ----------------------------------------------------------------------------- registry

SECTIONS: list[Section] = [
    Section("peak", "Reference", peak_names, peak_run),
    Section("generation", "Generation", generation_names, generation_run),
    Section("training", "Training", training_names, training_run),
    Section("loader", "Data loader", loader_names, loader_run),
    Section("features", "Features", features_names, features_run),
    Section("simulator", "Simulator", simulator_names, simulator_run),
    Section("analysis", "Analysis", analysis_names, analysis_run),
    Section("control", "Feature control", control_names, control_run, full_only=True),
    Section("app", "App", app_names, app_run),
    Section("sessions", "App sessions", sessions_names, sessions_run, full_only=True),
    Section("gpu", "GPU", gpu_names, gpu_run, gpu_only=True),
]

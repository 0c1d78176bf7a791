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

from common import (
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


def _bundled_model(ctx) -> Any:
    """The bundled CP2Image (shared, eval mode) loaded the way the app loads it."""
    if "model" not in ctx.cache:
        from cp2image.models.hub import load_model

        loaded = load_model(None)
        ctx.cache["model"] = loaded.model
        ctx.cache["model_source"] = loaded.source
    return ctx.cache["model"]


def _bundled_dataset(ctx) -> Any:
    if "dataset" not in ctx.cache:
        from cp2image.assets import bundled_dataset_dir
        from cp2image.data import open_dataset

        ctx.cache["dataset"] = open_dataset(bundled_dataset_dir())
    return ctx.cache["dataset"]


def _profiles(ctx, n: int) -> np.ndarray:
    """`n` real profiles (raw units, model feature order) from the bundled dataset."""
    model = _bundled_model(ctx)
    cells = _bundled_dataset(ctx).cells
    missing = [f for f in model.feature_names if f not in cells.columns]
    if missing:
        raise RuntimeError(f"bundled dataset lacks {len(missing)} model features, e.g. {missing[:3]}")
    table = cells[model.feature_names].to_numpy(dtype=np.float32)
    table = table[np.isfinite(table).all(axis=1)]
    reps = int(np.ceil(n / len(table)))
    return np.tile(table, (reps, 1))[:n]


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
    return [1, 16, 256] if ctx.quick else [1, 4, 16, 64, 128, 256, 512]


def generation_names(ctx) -> list[str]:
    return (["latency, batch 1", "throughput, batch 256"]
            + [f"throughput vs batch: {b}" for b in _gen_batches(ctx)])


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
                       repeats=ctx.repeats, number=5 if ctx.quick else 20)
    rows.append(time_row("Generation", "latency, batch 1", t1, unit="ms/image",
                         ratio=PAPER_SECONDS_PER_IMAGE / t1.median, reference="× faster than paper (20 ms/image, GPU)",
                         note=f"model.generate, {ctx.cache.get('model_source', '')}"))
    by_batch: dict[int, Row] = {}
    for b in sorted(set(_gen_batches(ctx)) | {256}):
        batch = profiles[:b]
        number = max(1, 64 // b) if ctx.quick else max(1, 256 // b)
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
    return rows


# ----------------------------------------------------------------------------- training

TRAIN_BATCH = 104  # the original work's batch size


def _train_batches(ctx) -> list[int]:
    return [32, TRAIN_BATCH] if ctx.quick else [16, 32, 64, TRAIN_BATCH, 208]


def training_names(ctx) -> list[str]:
    return ([f"throughput, batch {TRAIN_BATCH}", "step FLOP/s"]
            + [f"throughput vs batch: {b}" for b in _train_batches(ctx)])


def training_run(ctx) -> list[Row]:
    bench = _bench_module("train")
    rows: list[Row] = []
    by_batch: dict[int, tuple[float, float, float]] = {}
    for b in sorted(set(_train_batches(ctx)) | {TRAIN_BATCH}):
        res = bench.measure_training_step(batch_size=b, steps=ctx.repeats + 1, quick=ctx.quick)
        by_batch[b] = res
    for b in _train_batches(ctx):
        res = by_batch[b]
        frac = ctx.fraction_of_peak(res["flops_per_step"] / res["median_s"] / 1e9)
        rows.append(Row("Training", f"throughput vs batch: {b}", unit="samples/s",
                        median=b / res["median_s"], min=b / res["max_s"], ratio=frac,
                        reference="of fp32 peak"))
    res = by_batch[TRAIN_BATCH]
    ctx.train_samples_per_s = TRAIN_BATCH / res["median_s"]
    gflops = res["flops_per_step"] / res["median_s"] / 1e9
    frac = ctx.fraction_of_peak(gflops)
    rows.insert(0, Row("Training", f"throughput, batch {TRAIN_BATCH}", unit="samples/s",
                       median=ctx.train_samples_per_s, min=TRAIN_BATCH / res["max_s"],
                       note=res.get("note", "")))
    rows.insert(1, Row("Training", "step FLOP/s", unit="GFLOP/s", median=gflops,
                       min=res["flops_per_step"] / res["max_s"] / 1e9, ratio=frac,
                       reference="of fp32 peak", target="≥ 0.3 of peak",
                       met=None if frac is None else frac >= 0.3,
                       note=f"{res['flops_per_step'] / 1e9:.1f} GFLOP per step (G+D, fwd+bwd, FlopCounterMode)"))
    return rows


# ----------------------------------------------------------------------------- loader


def loader_names(ctx) -> list[str]:
    return ["data loader throughput"]


def loader_run(ctx) -> list[Row]:
    bench = _bench_module("train")
    res = bench.measure_loader(batch_size=TRAIN_BATCH, batches=8 if ctx.quick else 40)
    rate = res["samples_per_s"]
    ratio = rate / ctx.train_samples_per_s if ctx.train_samples_per_s else None
    return [Row("Data loader", "data loader throughput", unit="samples/s", median=rate,
                min=res.get("worst_samples_per_s", rate), ratio=ratio, reference="× training's need",
                target="≥ 3× training", met=None if ratio is None else ratio >= 3,
                note=res.get("note", ""))]


# ----------------------------------------------------------------------------- features


def _feature_workers(ctx) -> list[int]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return sorted({1, cores})


def features_names(ctx) -> list[str]:
    return ["measure, all cores"] + [f"crops/s vs workers: {w}" for w in _feature_workers(ctx)]


def features_run(ctx) -> list[Row]:
    from cp2image.features import measure

    images = np.asarray(_bundled_dataset(ctx).images[: 64 if ctx.quick else 400])
    n = len(images)
    measure(images[:4], n_jobs=1)  # warm-up: imports, JIT caches
    rows = []
    by_workers = {}
    for w in _feature_workers(ctx):
        t = time_call(lambda: measure(images, n_jobs=w), repeats=1 if ctx.quick else 2, warmup=0)
        by_workers[w] = rate_row("Features", f"crops/s vs workers: {w}", t, items=n, unit="crops/s")
    best = by_workers[max(by_workers)]
    ncols = ctx.cache.get("n_features")
    rows.append(Row("Features", "measure, all cores", unit="crops/s", median=best.median, min=best.min,
                    target="≥ 200 crops/s", met=best.median >= 200,
                    note=f"cp2image.features.measure on {n} bundled crops"))
    base = by_workers[1].median
    for w, r in by_workers.items():
        r.ratio, r.reference = r.median / base, "× 1 worker"
        rows.append(r)
    return rows


# ----------------------------------------------------------------------------- simulator


def _sim_sizes(ctx) -> list[int]:
    return [200, 800] if ctx.quick else [500, 2000, 8000]


def simulator_names(ctx) -> list[str]:
    return ["render + measure"] + [f"peak RSS vs cells: {n}" for n in _sim_sizes(ctx)]


_SIM_CHILD = """
import json, resource, sys, tempfile, time
sys.path.insert(0, {bench!r})
import bench_simulate as bench
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = bench.simulate_once(n_cells={n}, seed=0)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(res, rss_before_mb=before / 1024, rss_peak_mb=after / 1024)))
"""


def simulator_run(ctx) -> list[Row]:
    bench_dir = str(Path(__file__).resolve().parent)
    rows: list[Row] = []
    results = {}
    for n in _sim_sizes(ctx):
        results[n] = run_python_json(_SIM_CHILD.format(bench=bench_dir, n=n), timeout=900)
    biggest = max(results)
    res = results[biggest]
    rate = res["cells"] / res["seconds"]
    rows.append(Row("Simulator", "render + measure", unit="cells/s", median=rate, min=rate,
                    target="≥ 1,000 cells/s", met=rate >= 1000,
                    note=f"{res['cells']} cells, one run (fresh process); {res.get('note', '')}".strip("; ")))
    smallest = results[min(results)]["rss_peak_mb"]
    for n in _sim_sizes(ctx):
        r = results[n]
        rows.append(Row("Simulator", f"peak RSS vs cells: {n}", unit="MB", median=r["rss_peak_mb"],
                        min=r["rss_peak_mb"], ratio=r["rss_peak_mb"] / smallest,
                        reference=f"× at {min(results)} cells", target="flat (≤ 1.3×)",
                        met=r["rss_peak_mb"] / smallest <= 1.3,
                        note=f"after imports {r['rss_before_mb']:.0f} MB"))
    return rows


# ----------------------------------------------------------------------------- analysis


def analysis_names(ctx) -> list[str]:
    return ["perturbation strip, 9 images", "perturbation strip + measure back",
            "MoA interpolation", "PCA trajectory line, 9 images"]


def analysis_run(ctx) -> list[Row]:
    import torch

    from cp2image.analysis import interpolate, perturb, trajectory

    model = _bundled_model(ctx)
    cells = _bundled_dataset(ctx).cells
    profile = cells.iloc[0]
    feature = "Nuclei_AreaShape_Area"
    reps = ctx.repeats
    rows = []
    with torch.inference_mode():
        t = time_call(_quiet(lambda: perturb.sweep_feature(model, profile, feature, n_steps=9,
                                                           reference=cells, measure_back=False)),
                      repeats=reps, number=3)
        rows.append(time_row("Analysis", "perturbation strip, 9 images", t, target="≤ 150 ms",
                             met=t.median <= 0.150, note="sweep_feature, generation included"))
        t = time_call(_quiet(lambda: perturb.sweep_feature(model, profile, feature, n_steps=9,
                                                           reference=cells, measure_back=True)),
                      repeats=reps)
        rows.append(time_row("Analysis", "perturbation strip + measure back", t,
                             note="adds measure() of the 9 images"))
        moas = [m for m in cells["Metadata_MoA"].dropna().unique() if m != "DMSO"]
        t = time_call(_quiet(lambda: interpolate.interpolate_to_moa(model, cells, target_moa=moas[0])),
                      repeats=reps)
        rows.append(time_row("Analysis", "MoA interpolation", t, note=f"DMSO → {moas[0]}"))
        traj = trajectory.CompoundTrajectory.fit(cells)

        def line():
            frame = traj.line(n_points=9)
            return model.generate(frame, batch_size=9)

        t = time_call(_quiet(line), repeats=reps, number=3)
        rows.append(time_row("Analysis", "PCA trajectory line, 9 images", t,
                             note="DMSO → latrunculin B 3 µM, generation included"))
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


# ----------------------------------------------------------------------------- GPU


def gpu_names(ctx) -> list[str]:
    return ["fp32 matmul peak", "bf16 matmul peak", "generation batch 256, fp32",
            "generation batch 256, bf16 autocast", "generation batch 256, torch.compile",
            f"training batch {TRAIN_BATCH}, fp32", f"training batch {TRAIN_BATCH}, bf16 autocast",
            f"training batch {TRAIN_BATCH}, torch.compile"]


def gpu_run(ctx) -> list[Row]:
    import copy

    import torch

    rows: list[Row] = []
    sync = torch.cuda.synchronize
    for dtype in ("float32", "bfloat16"):
        timing, flops = matmul_peak(n=8192 if not ctx.quick else 4096, repeats=ctx.repeats,
                                    device="cuda", dtype_name=dtype)
        peak = flops / timing.min / 1e9
        ctx.gpu_peak_gflops[dtype] = peak
        name = "fp32 matmul peak" if dtype == "float32" else "bf16 matmul peak"
        rows.append(Row("GPU", name, unit="GFLOP/s", median=flops / timing.median / 1e9,
                        min=flops / max(timing.seconds) / 1e9,
                        note=f"{torch.cuda.get_device_name(0)}; TF32 {torch.backends.cuda.matmul.allow_tf32}"))
    cpu_model = _bundled_model(ctx)
    profiles = _profiles(ctx, 256)
    net = copy.deepcopy(cpu_model).to("cuda").eval()
    forward = _generator_forward(net)
    x = torch.as_tensor(_normalised(cpu_model, profiles), device="cuda")
    flops_img = ctx.cache.get("gen_flops") or count_flops(lambda: forward(x[:8])) / 8
    variants = {
        "generation batch 256, fp32": (forward, None),
        "generation batch 256, bf16 autocast": (forward, torch.bfloat16),
        "generation batch 256, torch.compile": (torch.compile(forward), None),
    }
    for name, (fn, amp) in variants.items():
        def call(fn=fn, amp=amp):
            with torch.inference_mode(), torch.autocast("cuda", dtype=amp or torch.float32, enabled=amp is not None):
                fn(x)
        t = time_call(call, repeats=ctx.repeats, warmup=3, number=10, sync=sync)
        peak = ctx.gpu_peak_gflops["bfloat16" if amp else "float32"]
        gflops = flops_img * 256 / t.median / 1e9
        rows.append(rate_row("GPU", name, t, items=256, unit="images/s", ratio=gflops / peak,
                             reference="of same-dtype GPU peak", note=f"{gflops:.0f} GFLOP/s"))
    bench = _bench_module("train")
    for name, opts in {f"training batch {TRAIN_BATCH}, fp32": {},
                       f"training batch {TRAIN_BATCH}, bf16 autocast": {"bf16": True},
                       f"training batch {TRAIN_BATCH}, torch.compile": {"compile": True}}.items():
        res = bench.measure_training_step(batch_size=TRAIN_BATCH, steps=ctx.repeats + 3,
                                          quick=ctx.quick, device="cuda", **opts)
        peak = ctx.gpu_peak_gflops["bfloat16" if opts.get("bf16") else "float32"]
        gflops = res["flops_per_step"] / res["median_s"] / 1e9
        rows.append(Row("GPU", name, unit="samples/s", median=TRAIN_BATCH / res["median_s"],
                        min=TRAIN_BATCH / res["max_s"], ratio=gflops / peak,
                        reference="of same-dtype GPU peak", note=f"{gflops:.0f} GFLOP/s"))
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


# ----------------------------------------------------------------------------- registry

SECTIONS: list[Section] = [
    Section("peak", "Reference", peak_names, peak_run),
    Section("generation", "Generation", generation_names, generation_run),
    Section("training", "Training", training_names, training_run),
    Section("loader", "Data loader", loader_names, loader_run),
    Section("features", "Features", features_names, features_run),
    Section("simulator", "Simulator", simulator_names, simulator_run),
    Section("analysis", "Analysis", analysis_names, analysis_run),
    Section("app", "App", app_names, app_run),
    Section("gpu", "GPU", gpu_names, gpu_run, gpu_only=True),
]

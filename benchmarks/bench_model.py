"""Speed of CP2Image on this machine: generation latency/throughput and training samples/s.

    .venv/bin/python benchmarks/bench_model.py [--quick]

Prints a Markdown table. Each row is measured in this run; ratios compare rows of the
same run. The paper reports 0.02 s per image (Titan RTX, batch unknown); the target
here is ≤ 2 ms per image batched on 2 CPU cores. On a shared machine the number of
intra-op threads matters (OpenMP spin-waiting), so both 1 and 2 threads are shown.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from cp2image.assets import bundled_model_dir
from cp2image.models import CP2Image, CP2ImageConfig
from cp2image.training.config import TrainConfig
from cp2image.training.objectives import CP2ImageObjective
from cp2image.training.runtime import Runtime


def reference_model(p: int = 453, base_filters: int = 32, names: list[str] | None = None) -> CP2Image:
    """An untrained CP2Image at the paper's reference size (p = 453, 32 filters, kernel 5).

    The one stand-in every benchmark uses when the bundled model is absent. It is not the
    bundled model's architecture: the bundled model is lighter per image, so rows measured
    on this stand-in say so in their note.
    """
    names = names or [f"Cells_Feature_{i}" for i in range(p)]
    p = len(names)
    cfg = CP2ImageConfig(feature_names=names, feature_mean=[0.0] * p, feature_scale=[1.0] * p,
                         base_filters=base_filters)
    return CP2Image(cfg).eval()


def time_generation(model: CP2Image, *, batch: int, repeats: int) -> tuple[float, float]:
    """(median wall, median process-CPU) seconds per image for `generate_from_normalised`.

    CPU time is what the work costs; wall time is what a user waits on this (possibly
    busy) machine. With one thread and an idle machine the two agree.
    """
    z = np.random.default_rng(0).standard_normal((batch, model.config.n_features)).astype(np.float32)
    model.generate_from_normalised(z, batch_size=batch)  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        model.generate_from_normalised(z, batch_size=batch)
        wall.append((time.perf_counter() - start) / batch)
        cpu.append((time.process_time() - start_cpu) / batch)
    return statistics.median(wall), statistics.median(cpu)


def time_training(base_filters: int, *, p: int, batch: int, steps: int, hidden: bool) -> tuple[float, float]:
    """Training (wall, CPU-time) samples/s of CP2Image steps (D update + G update)."""
    cfg = TrainConfig(base_filters=base_filters, batch_size=batch,
                      gamma_delay=[0] * 5 if hidden else [10**9] * 5)
    names = [f"F{i}" for i in range(p)]
    model_cfg = CP2ImageConfig(feature_names=names, feature_mean=[0.0] * p, feature_scale=[1.0] * p,
                               base_filters=base_filters)
    objective = CP2ImageObjective(cfg, Runtime(device=torch.device("cpu")), model_cfg)
    objective.finalise(lambda net: net)
    g = torch.Generator().manual_seed(0)
    data = {"images": torch.randint(0, 256, (batch, 3, 68, 68), dtype=torch.uint8, generator=g),
            "real": torch.randint(0, 256, (batch, 3, 68, 68), dtype=torch.uint8, generator=g),
            "features": torch.randn(batch, p, generator=g)}
    objective.step(data, 0)
    start, start_cpu = time.perf_counter(), time.process_time()
    for t in range(steps):
        objective.step(data, t)
    return batch * steps / (time.perf_counter() - start), batch * steps / (time.process_time() - start_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--compare-fusion", type=int, metavar="ROUNDS", default=0,
                        help="only compare generation with and without the fused 2× up-sampling "
                             "(batch 64/256 × 1/2 threads against the adjacent matmul peak), ROUNDS alternating rounds")
    args = parser.parse_args()
    if args.compare_fusion:
        compare_fusion(args.compare_fusion)
        return
    reps = 3 if args.quick else 7
    rows = []
    models = {"reference (p=453, f=32)": reference_model()}
    bundled = bundled_model_dir()
    if (bundled / "model.safetensors").exists():
        start = time.perf_counter()
        models[f"bundled {bundled.name}"] = CP2Image.from_pretrained(bundled)
        rows.append(("load bundled model (offline)", "-", f"{(time.perf_counter() - start) * 1e3:.0f} ms", ""))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, model in models.items():
            one, one_cpu = time_generation(model, batch=1, repeats=reps * 5)
            rows.append((f"generate {name}, batch 1 latency", threads, f"{one * 1e3:.2f} ms/image",
                         f"CPU time {one_cpu * 1e3:.2f} ms/image"))
            for batch in (64, 256):
                many, many_cpu = time_generation(model, batch=batch, repeats=reps)
                rows.append((f"generate {name}, batch {batch}", threads, f"{many * 1e3:.2f} ms/image",
                             f"{1 / many:.0f} images/s wall; CPU time {many_cpu * 1e3:.2f} ms/image; "
                             f"{one / many:.1f}× batch-1 throughput"))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for f in (32, 16):
            sps, sps_cpu = time_training(f, p=453, batch=32, steps=2 if args.quick else 4, hidden=True)
            rows.append((f"train CP2Image f={f}, batch 32, hidden loss on", threads, f"{sps:.1f} samples/s",
                         f"{sps_cpu:.1f} samples per CPU-second"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPU cores, 1-min load average at end {load:.1f}, torch {torch.__version__}\n")
    print("| measurement | threads | result | note |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")


# ----------------------------------------------------------------------------- runner section: peak and generation (benchmarks/run.py)

from typing import Any  # noqa: E402

from runner_support import Row, count_flops, matmul_peak, rate_row, time_call, time_row, unavailable  # noqa: E402
from bench_fixtures import PAPER_SECONDS_PER_IMAGE, bundled_model, cores, model_profiles, quiet  # noqa: E402


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


def _gen_batches(ctx) -> list[int]:
    return [1, 64] if ctx.quick else [1, 4, 16, 64, 128, 256, 512]


def _thread_counts() -> list[int]:
    return sorted({1, cores()})


def _thread_batches(ctx) -> tuple[int, ...]:
    return (64,) if ctx.quick else (64, 256)


def _refine_batch(ctx) -> int:
    return 8 if ctx.quick else 64


def generation_names(ctx) -> list[str]:
    return (["latency, batch 1", "throughput, batch 256"]
            + [f"throughput vs batch: {b}" for b in _gen_batches(ctx)]
            + [f"batch {b} vs torch threads: {t}" for b in _thread_batches(ctx) for t in _thread_counts()]
            + [f"refined with the model's critic, batch {_refine_batch(ctx)}"])


def _raw_generate(model, batch: np.ndarray):
    """`model.generate` on `batch` as the network alone: pose control and critic refinement (where
    this version of the model has them) are work around the network (segmentation, an optimisation
    of the input), so the generation rows leave them off."""
    import inspect

    off = {name: False for name in ("pose", "refine") if name in inspect.signature(model.generate).parameters}
    return lambda: model.generate(batch, batch_size=len(batch), **off)


def _generation_flops_per_image(ctx, model, profiles: np.ndarray) -> float:
    """The network's nominal FLOPs per image, counted layer by layer (up-sampling, then
    convolution). The fused inference path does the same convolution multiply-adds plus
    ~2 % of 1-D edge corrections, which are not credited."""
    from cp2image.models.generator import unfused_upsampling

    if "gen_flops" not in ctx.cache:
        batch = profiles[:8]
        with unfused_upsampling(model):
            total = count_flops(quiet(_raw_generate(model, batch)))
        ctx.cache["gen_flops"] = total / len(batch)
    return ctx.cache["gen_flops"]


def _against_adjacent_peak(ctx, model, batch: np.ndarray, flops_per_image: float, *, repeats: int,
                           number: int = 1) -> tuple[Any, float, float, float | None, str]:
    """Time `model.generate` on `batch`, then the matmul peak at the current thread count.

    On a shared machine the load moves within a run, so the reference is measured next to the
    figure (median against median). Returns (timing, achieved GFLOP/s, wall-clock fraction of
    that peak, the same fraction in CPU time, note). `--quick` and batches below 64 use the
    run's peak instead (fraction in CPU time: None).
    """
    import torch

    with torch.inference_mode():
        t = time_call(quiet(_raw_generate(model, batch)), repeats=repeats, number=number)
    flops = flops_per_image * len(batch)
    gflops = flops / t.median / 1e9
    if ctx.quick or len(batch) < 64:  # smoke run / tiny batches: the run's own peak, no second matmul
        frac = ctx.fraction_of_peak(gflops)
        return t, gflops, frac, None, f"{gflops:.1f} GFLOP/s against the run's peak; {torch.get_num_threads()} thread(s)"
    peak_t, peak_flops = matmul_peak(n=PEAK_N, repeats=3)
    peak = peak_flops / peak_t.median / 1e9
    frac = gflops / peak
    cpu_frac = (flops / t.cpu_median) / (peak_flops / peak_t.cpu_median) if t.cpu_median and peak_t.cpu_median else None
    note = (f"{gflops:.1f} GFLOP/s; matmul peak right after it {peak:.1f} GFLOP/s (median), "
            f"{torch.get_num_threads()} thread(s)"
            + (f"; in CPU time {cpu_frac:.2f} of the peak" if cpu_frac is not None else ""))
    return t, gflops, frac, cpu_frac, note


def generation_run(ctx) -> list[Row]:
    import torch

    model = bundled_model(ctx)
    profiles = model_profiles(ctx, 512)
    flops_per_image = _generation_flops_per_image(ctx, model, profiles)
    rows: list[Row] = []
    one = profiles[:1]
    with torch.inference_mode():
        t1 = time_call(quiet(_raw_generate(model, one)), repeats=ctx.repeats, number=3 if ctx.quick else 20)
    rows.append(time_row("Generation", "latency, batch 1", t1, unit="ms/image",
                         ratio=PAPER_SECONDS_PER_IMAGE / t1.median, reference="× the paper's speed (20 ms/image, GPU)",
                         note=f"model.generate, {ctx.cache.get('model_source', '')}"))
    by_batch: dict[int, Row] = {}
    for b in sorted(set(_gen_batches(ctx)) | {256}):
        number = max(1, 8 // b) if ctx.quick else max(1, 64 // b)
        t, _, frac, cpu_frac, note = _against_adjacent_peak(ctx, model, profiles[:b], flops_per_image,
                                                            repeats=ctx.repeats, number=number)
        by_batch[b] = rate_row("Generation", f"throughput vs batch: {b}", t, items=b, unit="images/s",
                               ratio=frac, reference="of fp32 peak", note=note,
                               extra={"cpu_time_fraction_of_peak": cpu_frac})
    main = by_batch[256]
    frac = main.ratio
    rows.append(Row("Generation", "throughput, batch 256", unit="images/s", median=main.median,
                    min=main.min, ratio=frac, reference="of fp32 peak", target="≥ 0.5 of peak",
                    met=None if frac is None else frac >= 0.5,
                    note=(f"{flops_per_image / 1e9:.3f} GFLOP/image (FlopCounterMode); "
                          f"{1e3 / main.median:.2f} ms/image = "
                          f"{PAPER_SECONDS_PER_IMAGE * main.median:.0f}× the paper's 20 ms; {main.note}")))
    rows.extend(by_batch[b] for b in _gen_batches(ctx))
    rows.extend(_generation_vs_threads(ctx, model, profiles, flops_per_image))
    rows.append(_refined_generation(ctx, model, profiles[:_refine_batch(ctx)]))
    return rows


def _refined_generation(ctx, model, batch: np.ndarray) -> Row:
    """What `generate`'s default critic refinement costs per image, against the same batch as drawn.

    Refinement runs the generator and the critic(s) forward and backward K times, so its cost
    is set by the model folder's `refine.json` and by how many critics steer it."""
    import torch

    name = f"refined with the model's critic, batch {len(batch)}"
    if not getattr(model, "can_refine", False) or model.refinement is None:
        return unavailable("Generation", name, "the bundled model has no critic (critic/) to refine with")
    config = model.refinement
    repeats = 1 if ctx.quick else max(1, ctx.repeats // 2)
    with torch.inference_mode():
        plain = time_call(quiet(_raw_generate(model, batch)), repeats=repeats)
    refined = time_call(quiet(lambda: model.generate(batch, batch_size=len(batch), pose=False, refine=config)),
                        repeats=repeats)
    members = len(model.critic.regressors)
    return time_row("Generation", name, refined, scale=1e3 / len(batch), unit="ms/image",
                    ratio=refined.median / plain.median, reference="× the same batch as drawn",
                    note=f"{config.steps} Adam steps (lr {config.lr:g}) through {members} critic(s); "
                         f"{torch.get_num_threads()} thread(s); as drawn {1e3 * plain.median / len(batch):.1f} ms/image")


def _generation_vs_threads(ctx, model, profiles: np.ndarray, flops_per_image: float) -> list[Row]:
    """Batch-64 and batch-256 throughput at each intra-op thread count, against the matmul peak
    at that same thread count measured just before (on a shared machine one thread can win)."""
    import torch

    before = torch.get_num_threads()
    rows = []
    try:
        for b in _thread_batches(ctx):
            for threads in _thread_counts():
                torch.set_num_threads(threads)
                t, _, frac, cpu_frac, note = _against_adjacent_peak(
                    ctx, model, profiles[:b], flops_per_image, repeats=1 if ctx.quick else ctx.repeats,
                    number=1 if ctx.quick else max(1, 256 // b))
                rows.append(rate_row("Generation", f"batch {b} vs torch threads: {threads}", t, items=b,
                                     unit="images/s", ratio=frac,
                                     reference="of fp32 peak" if ctx.quick else f"of the {threads}-thread peak",
                                     target="≥ 0.5 of peak", met=None if frac is None else frac >= 0.5, note=note,
                                     extra={"cpu_time_fraction_of_peak": cpu_frac}))
    finally:
        torch.set_num_threads(before)
    return rows

def compare_fusion(rounds: int) -> None:
    """The runner's "batch B vs torch threads" rows for the bundled model, layer by layer
    (`unfused_upsampling`, the inference path before the fusion) and fused, alternating in one
    process so that both see the same load; prints one line per row and round."""
    import warnings

    from cp2image.models.generator import unfused_upsampling
    from runner_support import Context

    warnings.simplefilter("ignore")
    ctx = Context(quick=False, repeats=5)
    model = bundled_model(ctx)
    profiles = model_profiles(ctx, 512)
    flops = _generation_flops_per_image(ctx, model, profiles)
    print(f"{ctx.cache['model_source']}; {flops / 1e9:.4f} GFLOP/image (nominal); {cores()} cores")
    print("| round | path | row | fraction of peak (wall) | in CPU time | images/s | load (1 min) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in range(rounds):
        for path in ("layer by layer", "fused"):
            if path == "fused":
                rows = _generation_vs_threads(ctx, model, profiles, flops)
            else:
                with unfused_upsampling(model):
                    rows = _generation_vs_threads(ctx, model, profiles, flops)
            load = os.getloadavg()[0]
            for row in rows:
                print(f"| {r + 1} | {path} | {row.name} | {row.ratio:.2f} | "
                      f"{row.extra['cpu_time_fraction_of_peak']:.2f} | {row.median:.0f} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    main()

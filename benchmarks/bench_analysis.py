"""Analysis speed: the 9-image perturbation strip (target < 150 ms on CPU, generation
included) and its parts, measuring back, MoA interpolation and the PCA trajectory.

Run: `.venv/bin/python benchmarks/bench_analysis.py [--repeats 7] [--model DIR] [--dataset DIR]`.
Prints a Markdown table of min / median milliseconds per call. Uses the bundled model and
dataset when they exist; otherwise an untrained CP2Image at the paper's reference size
(p = 453, 32 filters, kernel 5: same FLOPs) and synthetic cells, and says so.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cp2image.analysis import export, interpolate, panels, perturb, trajectory  # noqa: E402
from cp2image.assets import bundled_dataset_dir, bundled_model_dir  # noqa: E402

FEATURE = "Nuclei_AreaShape_Area"


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(min, median) seconds of `fn` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def load(model_dir: Path, dataset_dir: Path):
    """(model, cells, note): bundled assets when present, else reference-size stand-ins."""
    from cp2image.models import CP2Image

    if (model_dir / "model.safetensors").exists() and (dataset_dir / "dataset.json").exists():
        from cp2image.data.dataset import open_dataset

        model = CP2Image.from_pretrained(model_dir)
        cells = open_dataset(dataset_dir).cells
        return model, cells, f"trained model {model_dir.name}, dataset {dataset_dir.name} ({len(cells)} cells)"
    from bench_model import reference_model  # the one reference-size stand-in

    names = [FEATURE] + [f"Nuclei_Reference_{i}" for i in range(452)]
    model = reference_model(names=names)
    rng = np.random.default_rng(0)
    n = 2000
    cells = pd.DataFrame(rng.standard_normal((n, 453)), columns=names)
    cells["Metadata_Compound"] = rng.choice(["DMSO", "latrunculin B", "taxol"], n)
    cells["Metadata_Concentration"] = np.where(cells["Metadata_Compound"] == "DMSO", 0.0, rng.choice([0.3, 1.0, 3.0], n))
    cells["Metadata_MoA"] = cells["Metadata_Compound"].map(
        {"DMSO": "DMSO", "latrunculin B": "Actin disruptors", "taxol": "Microtubule stabilizers"})
    return model, cells, "UNTRAINED reference-size CP2Image (p = 453) + synthetic cells: bundled assets absent"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", type=Path, default=bundled_model_dir())
    parser.add_argument("--dataset", type=Path, default=bundled_dataset_dir())
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch thread counts for the strip rows (default: 1 and torch's default)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import torch

    model, cells, note = load(args.model, args.dataset)
    feats = list(model.feature_names)
    dmso = cells.loc[cells["Metadata_Compound"] == "DMSO"].dropna(subset=feats)
    profile = dmso.iloc[0]
    frame9 = perturb.sweep_feature(model, profile, FEATURE, mode="single", reference=dmso, measure_back=False).profiles
    r = args.repeats
    rows: list[tuple[str, tuple[float, float], str]] = []
    default_threads = torch.get_num_threads()
    thread_counts = args.threads or sorted({1, default_threads})
    sweep = lambda: perturb.sweep_feature(model, profile, FEATURE, mode="single", reference=dmso, measure_back=False)  # noqa: E731

    with torch.inference_mode():
        for n_threads in thread_counts:
            torch.set_num_threads(n_threads)
            rows.append((f"generate 9 profiles (model.generate only), {n_threads} thread(s)",
                         timed(lambda: model.generate(frame9), r), ""))
            strip_t = timed(sweep, r)
            rows.append((f"**9-image perturbation strip** (sweep_feature, generation included), {n_threads} thread(s)",
                         strip_t, "target < 150 ms: " + ("met" if strip_t[1] < 0.150 else "NOT met") + " (median)"))
        torch.set_num_threads(thread_counts[0])
        res = sweep()
        rows.append(("  + RGB composites (render.composite, 9 crops)",
                     timed(lambda: panels.render.composite(res.images), r), ""))
        rows.append(("  + strip panel figure (panels.perturbation_panel)",
                     timed(lambda: panels.perturbation_panel(res), r), "matplotlib Figure, no rendering"))
        panel = panels.perturbation_panel(res)
        rows.append(("  + PNG export 150 dpi", timed(lambda: export.to_png(panel), r), ""))
        rows.append(("  + PNG export 300 dpi", timed(lambda: export.to_png(panel, dpi=300), r), ""))
        rows.append(("  + SVG export", timed(lambda: export.to_svg(panel), r), ""))
        rows.append(("measure back 9 images (separate; cp2image.features.measure)",
                     timed(lambda: perturb.measure_result(res), r), ""))
        moas = sorted(m for m in cells["Metadata_MoA"].dropna().unique() if m != "DMSO")
        target = "Actin disruptors" if "Actin disruptors" in moas else moas[0]
        rows.append((f"MoA interpolation DMSO → {target} (all steps, images)",
                     timed(lambda: interpolate.interpolate_to_moa(model, cells, target_moa=target), r), ""))
        rows.append(("PCA trajectory fit (DMSO + latrunculin B)",
                     timed(lambda: trajectory.CompoundTrajectory.fit(cells, features=feats), r), ""))
        traj = trajectory.CompoundTrajectory.fit(cells, features=feats)
        end = 3.0 if 3.0 in traj.concentrations else traj.concentrations[-1]
        rows.append(("PCA line, 9 images (line + generate)",
                     timed(lambda: model.generate(traj.line(9, end_concentration=end)[feats]), r), ""))
        rows.append(("click → profile (residual method) + 1 image",
                     timed(lambda: model.generate(traj.profile_at(0.5, 0.5).to_frame().T), r), ""))

    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# Analysis benchmark\n\n{note}; torch {torch.__version__}, torch default {default_threads} threads "
          f"(rows below the strip use {thread_counts[0]}), {os.cpu_count()} CPUs, 1-min load average {load_avg:.1f}, "
          f"{r} repeats.\n")
    print("| step | min ms | median ms | note |\n|---|---:|---:|---|")
    for name, (lo, med), extra in rows:
        print(f"| {name} | {lo * 1e3:.1f} | {med * 1e3:.1f} | {extra} |")
    return 0


# ----------------------------------------------------------------------------- runner section: analysis (benchmarks/run.py)

from runner_support import Row, time_call, time_row  # noqa: E402
from bench_fixtures import quiet  # noqa: E402


def analysis_names(ctx) -> list[str]:
    return ["perturbation strip, 9 images", "perturbation strip, 1 torch thread", "perturbation strip + measure back",
            "MoA interpolation", "PCA trajectory line, 9 images"]


def analysis_run(ctx) -> list[Row]:
    import torch

    from cp2image.analysis import interpolate, perturb, trajectory
    from cp2image.assets import bundled_dataset_dir, bundled_model_dir

    model, cells, note = load(bundled_model_dir(), bundled_dataset_dir())
    feats = list(model.feature_names)
    feature = FEATURE
    dmso = cells.loc[cells["Metadata_Compound"] == "DMSO"].dropna(subset=feats)
    profile = dmso.iloc[0]
    reps = ctx.repeats
    rows = []
    with torch.inference_mode():
        t = time_call(quiet(lambda: perturb.sweep_feature(model, profile, feature, mode="single", reference=dmso,
                                                           measure_back=False)),
                      repeats=reps, number=3)
        rows.append(time_row("Analysis", "perturbation strip, 9 images", t, target="≤ 150 ms",
                             met=t.median <= 0.150, note=f"sweep_feature, generation included; {note}"))
        before = torch.get_num_threads()
        torch.set_num_threads(1)  # on a busy machine one intra-op thread avoids OpenMP spin-waits
        try:
            t = time_call(quiet(lambda: perturb.sweep_feature(model, profile, feature, mode="single", reference=dmso,
                                                               measure_back=False)),
                          repeats=reps, number=3)
        finally:
            torch.set_num_threads(before)
        rows.append(time_row("Analysis", "perturbation strip, 1 torch thread", t, target="≤ 150 ms",
                             met=t.median <= 0.150, note="same call, torch.set_num_threads(1)"))
        t = time_call(quiet(lambda: perturb.sweep_feature(model, profile, feature, mode="single", reference=dmso,
                                                           measure_back=True)), repeats=1 if ctx.quick else reps)
        rows.append(time_row("Analysis", "perturbation strip + measure back", t,
                             note="adds cp2image.features.measure of the 9 images"))
        moas = sorted(m for m in cells["Metadata_MoA"].dropna().unique() if m != "DMSO")
        target = "Actin disruptors" if "Actin disruptors" in moas else moas[0]
        t = time_call(quiet(lambda: interpolate.interpolate_to_moa(model, cells, target_moa=target)),
                      repeats=1 if ctx.quick else reps)
        rows.append(time_row("Analysis", "MoA interpolation", t, note=f"DMSO → {target}, all steps with images"))
        traj = trajectory.CompoundTrajectory.fit(cells, features=feats)
        end = 3.0 if 3.0 in traj.concentrations else traj.concentrations[-1]
        t = time_call(quiet(lambda: model.generate(traj.line(9, end_concentration=end)[feats])),
                      repeats=reps, number=3)
        rows.append(time_row("Analysis", "PCA trajectory line, 9 images", t,
                             note=f"DMSO → latrunculin B {end:g} µM, generation included"))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())

"""The Dask path at size: `cp2image simulate` / `cp2image features` as a user runs them.

Run: `.venv/bin/python benchmarks/bench_scale.py [--sizes 2000 10000] [--measure-cells 3000] [--jobs 2]`

Each run is the real command line in a fresh process (a LocalCluster of `--jobs`
worker processes). A sampler walks the command's whole process tree every 50 ms
with psutil and records:

- peak RSS of the main process (the one that writes the dataset: this is what grew
  with the number of cells while `DatasetWriter` kept every row until `close`),
- peak RSS summed over the tree (main + nannies + workers),
- CPU-seconds of every process in the tree (last sample per process), and of the
  main process alone (client, scheduler, nannies, the writer),

beside wall time and the load average, because this machine is shared: wall-clock
rates move with the other load, CPU-seconds much less. Prints one Markdown table.
Nothing here is asserted; `docs/performance.md` quotes the output.

`--end-to-end N...` runs the whole `cp2image simulate` (with measurement) at each size, and
`--close-phase N...` only its last phase (merge + summary) by resuming a folder in which every
well is already written: the issue-16 memory check (100k cells within 1.25x of 10k).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def run_measured(command: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO,
                 trace: Path | None = None) -> dict:
    """Run `command`, sampling its process tree; return wall, CPU-s and peak RSS figures (MB).

    With `trace`, one line per second goes there (seconds, main RSS MB, tree RSS MB), so
    growth over the run can be seen, not just the peak.
    """
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(env or os.environ, PYTHONUNBUFFERED="1"))
    root = psutil.Process(proc.pid)
    peak_main, peak_tree = 0, 0
    cpu: dict[int, float] = {}
    done = threading.Event()
    trace_file = open(trace, "w") if trace else None
    last_trace = -1.0

    def sample() -> None:
        nonlocal peak_main, peak_tree, last_trace
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            tree = main_rss = 0
            for p in procs:
                try:
                    with p.oneshot():
                        rss = p.memory_info().rss
                        t = p.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                tree += rss
                cpu[p.pid] = t.user + t.system
                if p.pid == root.pid:
                    main_rss = rss
                    peak_main = max(peak_main, rss)
            peak_tree = max(peak_tree, tree)
            now = time.perf_counter() - start
            if trace_file is not None and now - last_trace >= 1.0:
                trace_file.write(f"{now:.1f} {main_rss / 2**20:.0f} {tree / 2**20:.0f}\n")
                trace_file.flush()
                last_trace = now
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if trace_file is not None:
        trace_file.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out[-3000:]}")
    return {"wall": wall, "cpu": sum(cpu.values()), "cpu_main": cpu.get(root.pid, 0.0), "peak_main_mb": peak_main / 2**20,
            "peak_tree_mb": peak_tree / 2**20, "load": (load0 + os.getloadavg()[0]) / 2, "output": out}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cp2image", *args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000], help="cells for the render-only runs")
    parser.add_argument("--measure-cells", type=int, default=3000, help="cells for the render + measure run (0: skip)")
    parser.add_argument("--jobs", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--replicates", type=int, default=1, help="plates (fewer → more cells per well)")
    parser.add_argument("--workdir", default=None, help="where the datasets go (default: a temporary folder)")
    parser.add_argument("--end-to-end", type=int, nargs="+", default=[], metavar="N",
                        help="only `cp2image simulate OUT --cells N --seed 0` with measurement (3 plates) for each N, "
                        "peak RSS against the first size (issue 16: 100k within 1.25x of 10k)")
    parser.add_argument("--close-phase", type=int, nargs="+", default=[], metavar="N",
                        help="only the command's last phase at each N: resume a work folder in which every well "
                        "of the N-cell screen is already journaled (see close_phase_memory)")
    args = parser.parse_args(argv)
    if args.close_phase:
        return close_phase_memory(args.close_phase, jobs=args.jobs, workdir=args.workdir)
    if args.end_to_end:
        return end_to_end_memory(args.end_to_end, jobs=args.jobs, workdir=args.workdir)

    cores = len(os.sched_getaffinity(0))
    print(f"# Scale benchmark: {cores} cores, --jobs {args.jobs}, load average {os.getloadavg()[0]:.1f} at start\n")
    rows = ["| run | cells | wall s | cells/s (wall) | CPU-s (all processes) | cells per CPU-s | "
            "peak RSS main MB | peak RSS tree MB | main RSS ratio | load avg |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        base = None
        for n in args.sizes:
            r = run_measured(cli("simulate", f"{tmp}/render{n}", "--cells", str(n), "--replicates", str(args.replicates),
                                 "--jobs", str(args.jobs), "--no-features", "--no-progress"))
            base = base or r["peak_main_mb"]
            rows.append(f"| simulate --no-features | {n} | {r['wall']:.1f} | {n / r['wall']:.0f} | {r['cpu']:.1f} | "
                        f"{n / r['cpu']:.0f} | {r['peak_main_mb']:.0f} | {r['peak_tree_mb']:.0f} | "
                        f"{r['peak_main_mb'] / base:.2f}× at {args.sizes[0]} | {r['load']:.1f} |")
            print(rows[-1], flush=True)
        if args.measure_cells:
            n = args.measure_cells
            path = f"{tmp}/measured{n}"
            r = run_measured(cli("simulate", path, "--cells", str(n), "--replicates", str(args.replicates),
                                 "--jobs", str(args.jobs), "--no-progress"))
            rows.append(f"| simulate (render + segment + 492 features) | {n} | {r['wall']:.1f} | {n / r['wall']:.1f} | "
                        f"{r['cpu']:.1f} | {n / r['cpu']:.1f} | {r['peak_main_mb']:.0f} | {r['peak_tree_mb']:.0f} | | "
                        f"{r['load']:.1f} |")
            print(rows[-1], flush=True)
            r = run_measured(cli("features", path, "--jobs", str(args.jobs), "--no-progress"))
            rows.append(f"| features (492, re-measured) | {n} | {r['wall']:.1f} | {n / r['wall']:.1f} | {r['cpu']:.1f} | "
                        f"{n / r['cpu']:.1f} | {r['peak_main_mb']:.0f} | {r['peak_tree_mb']:.0f} | | {r['load']:.1f} |")
            print(rows[-1], flush=True)
    print("\n" + "\n".join(rows))
    return 0


def end_to_end_memory(sizes: list[int], *, jobs: int, workdir: str | None) -> int:
    """The issue-16 memory check: the whole `cp2image simulate` command (measurement, writer,
    summary) at each size in a fresh process tree; peak RSS of the main process (the writer)
    and of the tree, each against the first size. A per-second RSS trace per size goes beside
    the datasets (`trace-N.txt`), to see whether memory grows with the cells written."""
    rows = ["| cp2image simulate --seed 0 --jobs 2 | cells | wall s | CPU-s (all processes) | CPU-ms per cell | "
            "peak RSS main MB | main ratio | peak RSS tree MB | tree ratio | load avg |",
            "|---|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    base: dict | None = None
    with tempfile.TemporaryDirectory(dir=workdir, prefix="cp2image-scale-") as tmp:
        for n in sizes:
            trace = Path(workdir or tmp) / f"trace-{n}.txt"
            r = run_measured(cli("simulate", f"{tmp}/sim{n}", "--cells", str(n), "--seed", "0", "--jobs", str(jobs),
                                 "--no-progress"), trace=trace)
            base = base or r
            rows.append(f"| full command | {n} | {r['wall']:.1f} | {r['cpu']:.1f} | {1e3 * r['cpu'] / n:.2f} | "
                        f"{r['peak_main_mb']:.0f} | {r['peak_main_mb'] / base['peak_main_mb']:.2f}x at {sizes[0]} | "
                        f"{r['peak_tree_mb']:.0f} | {r['peak_tree_mb'] / base['peak_tree_mb']:.2f}x at {sizes[0]} | "
                        f"{r['load']:.1f} |")
            print(rows[-1], flush=True)
            shutil.rmtree(f"{tmp}/sim{n}", ignore_errors=True)
    print("\n" + "\n".join(rows))
    return 0


def _journal_every_well(n: int, target: Path) -> None:
    """A resumable work folder for `cp2image simulate target --cells n --seed 0` in which every
    well is already written: zero images, and the measured rows of one real well (simulated
    here, 70 cells) repeated to each well's size with that well's metadata."""
    import numpy as np
    import pandas as pd

    from cp2image.data.simulate.pipeline import (SimulationConfig, _well_splits, config_fingerprint, simulate_well,
                                                 simulation_meta)
    from cp2image.data.simulate.screen import ScreenConfig, plan_screen
    from cp2image.data.writer import DatasetWriter

    config = SimulationConfig(screen=ScreenConfig(n_cells=n, seed=0))
    plans = [p for p in plan_screen(config.screen) if p.n_cells > 0]
    template = simulate_well(plan_screen(SimulationConfig(screen=ScreenConfig(n_cells=10_000, seed=0)).screen)[0],
                             config=SimulationConfig(screen=ScreenConfig(n_cells=10_000, seed=0)))[1]
    splits = _well_splits(config.screen)
    writer = DatasetWriter(target, n, crop_size=config.render.crop_size, meta=simulation_meta(config),
                           resume_key=config_fingerprint(config))
    for plan in plans:
        rows = pd.concat([template] * -(-plan.n_cells // len(template)), ignore_index=True).iloc[:plan.n_cells].copy()
        t = plan.treatment
        rows["Metadata_Plate"], rows["Metadata_Well"], rows["Metadata_Replicate"] = plan.plate, plan.well, plan.replicate
        rows["Metadata_Compound"], rows["Metadata_Concentration"], rows["Metadata_MoA"] = t.compound, t.concentration, t.moa
        rows["Metadata_Split"] = splits[(plan.plate, plan.well)]
        writer.append(np.zeros((plan.n_cells, 3, config.render.crop_size, config.render.crop_size), np.uint8), rows,
                      unit=str(plan.index))
    writer._close_files()  # left as a killed run leaves it


def close_phase_memory(sizes: list[int], *, jobs: int, workdir: str | None) -> int:
    """The last phase of `cp2image simulate` at each size, measured like `end_to_end_memory`.

    A full 100k-cell run takes hours on a shared 2-core machine; its last phase (the
    writer merging one parquet part per well into cells.parquet, then the summary) is
    reached in seconds by resuming a work folder in which every well is journaled. That
    phase set the whole command's peak memory at 10k cells (371 of 1,198 MB tree, main
    process). The cluster still starts; its workers run no task.
    """
    rows = ["| resumed with every well written | cells | wall s | peak RSS main MB | main ratio | peak RSS tree MB | load avg |",
            "|---|---:|---:|---:|---|---:|---:|"]
    base: dict | None = None
    with tempfile.TemporaryDirectory(dir=workdir, prefix="cp2image-close-") as tmp:
        for n in sizes:
            target = Path(tmp) / f"sim{n}"
            _journal_every_well(n, target)
            r = run_measured(cli("simulate", str(target), "--cells", str(n), "--seed", "0", "--jobs", str(jobs),
                                 "--no-progress"), trace=Path(workdir or tmp) / f"trace-close-{n}.txt")
            base = base or r
            rows.append(f"| close + summary | {n} | {r['wall']:.1f} | {r['peak_main_mb']:.0f} | "
                        f"{r['peak_main_mb'] / base['peak_main_mb']:.2f}x at {sizes[0]} | {r['peak_tree_mb']:.0f} | "
                        f"{r['load']:.1f} |")
            print(rows[-1], flush=True)
            shutil.rmtree(target, ignore_errors=True)
    print("\n" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

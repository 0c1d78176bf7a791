"""Virtual BBBC021 simulator: rendering speed, full-pipeline speed and memory vs cells.

Run: `.venv/bin/python benchmarks/bench_simulator.py [--cells 4000] [--sizes 1000 4000 16000] [--jobs 1 2]`

Each measurement runs `simulate_screen` in a fresh Python process (so peak RSS is
its own) and prints one Markdown table:

- **render**: fields rendered, cropped around nuclei and streamed to the memmap,
  no measurement (`SimulationConfig(measure=False)`), for each `--jobs`;
  cells/s of wall time and cells per CPU-second (all processes), the second being
  the fair number on a shared machine;
- **render + measure**: the full path (crop → segment → CellProfiler features);
- **peak RSS vs cells** (render only, `--sizes`): peak RSS includes the file-backed
  pages of the images memmap being written (page cache, reclaimable, grows with N);
  peak *anonymous* RSS (the heap, sampled from /proc/self/status in the main process)
  should stay flat, since images stream to disk one well at a time; the cell table
  (held by `DatasetWriter` until close) is the only part of it that grows with N.

With one plate (`--replicates 1`, the default here) wells hold more cells, so fewer
rendered cells are discarded than in a small three-plate screen.

`--cli N [--compounds taxol]` runs only the command a user runs, `cp2image simulate OUT --cells N --jobs 2`
(render + crop + segment + 492 features, a LocalCluster, the streaming writer), in a
fresh process tree sampled by `bench_scale.run_measured`, and prints crops/s of wall
time on this machine as loaded at the time beside CPU-ms per cell summed over every
process; 2 / CPU-s per cell is what two free cores would reach (an upper bound).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, tempfile, threading, time
from pathlib import Path

peak_anon = [0]
def _sample():  # peak anonymous RSS (heap), excluding file-backed pages of the images memmap
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                peak_anon[0] = max(peak_anon[0], int(line.split()[1]))
        time.sleep(0.02)
threading.Thread(target=_sample, daemon=True).start()
from cp2image.data.simulate.pipeline import SimulationConfig, simulate_screen
from cp2image.data.simulate.screen import ScreenConfig
config = SimulationConfig(screen=ScreenConfig(n_cells={n}, seed=0, replicates={replicates}), measure={measure})
with tempfile.TemporaryDirectory() as tmp:
    wall, cpu = time.perf_counter(), time.process_time()
    simulate_screen(Path(tmp) / "sim", config, jobs={jobs})
    wall = time.perf_counter() - wall
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu + child.ru_utime + child.ru_stime
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps(dict(cells={n}, wall=wall, cpu=cpu, peak_mb=peak / 1024, anon_mb=peak_anon[0] / 1024)))
"""


def run_child(n: int, *, measure: bool, jobs: int, replicates: int) -> dict:
    code = CHILD.format(n=n, measure=measure, jobs=jobs, replicates=replicates)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8000, help="cells for the speed rows")
    parser.add_argument("--measure-cells", type=int, default=1000, help="cells for the render + measure rows")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000], help="cells for the RSS rows")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--replicates", type=int, default=1, help="plates (fewer plates → more cells per well)")
    parser.add_argument("--cli", type=int, default=0, metavar="N", help="only the end-to-end command line on N cells")
    parser.add_argument("--cli-jobs", type=int, default=2)
    parser.add_argument("--compounds", nargs="+", default=[], help="with --cli: simulate only these (+ DMSO)")
    args = parser.parse_args(argv)
    if args.cli:
        r = cli_end_to_end(args.cli, jobs=args.cli_jobs, replicates=args.replicates, compounds=tuple(args.compounds))
        print(END_TO_END_HEADER + "\n" + end_to_end_line(r))
        return 0

    rows = ["| measurement | cells | jobs | wall s | cells/s (wall) | cells per CPU-s | peak RSS MB | peak anon RSS MB (main) | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    base_rate = None
    for jobs in args.jobs:
        r = run_child(args.cells, measure=False, jobs=jobs, replicates=args.replicates)
        rate = r["cells"] / r["wall"]
        base_rate = base_rate or rate
        rows.append(f"| render + crop + stream | {r['cells']} | {jobs} | {r['wall']:.1f} | {rate:.0f} | "
                    f"{r['cells'] / r['cpu']:.0f} | {r['peak_mb']:.0f} | {r['anon_mb']:.0f} | {rate / base_rate:.2f}× jobs={args.jobs[0]} |")
    for jobs in args.jobs:
        r = run_child(args.measure_cells, measure=True, jobs=jobs, replicates=args.replicates)
        rows.append(f"| render + measure (492 features) | {r['cells']} | {jobs} | {r['wall']:.1f} | "
                    f"{r['cells'] / r['wall']:.0f} | {r['cells'] / r['cpu']:.0f} | {r['peak_mb']:.0f} | {r['anon_mb']:.0f} | |")
    base_rss = None
    for n in args.sizes:
        r = run_child(n, measure=False, jobs=1, replicates=args.replicates)
        base_rss = base_rss or r["anon_mb"]
        rows.append(f"| peak RSS, render only | {n} | 1 | {r['wall']:.1f} | {n / r['wall']:.0f} | "
                    f"{n / r['cpu']:.0f} | {r['peak_mb']:.0f} | {r['anon_mb']:.0f} | "
                    f"{r['anon_mb'] / base_rss:.2f}× anon at {args.sizes[0]} |")
    print("\n".join(rows))
    return 0


# ----------------------------------------------------------------------------- end to end: the command line

TARGET_CELLS_PER_S = 150.0  # issue 16 item 3: simulate with measurement, on 2 cores


def cli_end_to_end(cells: int, *, jobs: int = 2, replicates: int = 1, compounds: tuple[str, ...] = (),
                   workdir: str | None = None) -> dict:
    """`cp2image simulate` with measurement into a fresh folder, sampled over its whole process tree."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_scale import cli, run_measured

    with tempfile.TemporaryDirectory(dir=workdir, prefix="cp2image-bench-") as tmp:
        r = run_measured(cli("simulate", f"{tmp}/sim", "--cells", str(cells), "--replicates", str(replicates),
                             *(["--compounds", *compounds] if compounds else []), "--jobs", str(jobs), "--no-progress"))
    cpu_ms = 1e3 * r["cpu"] / cells
    return {**r, "n": cells, "jobs": jobs, "replicates": replicates, "compounds": compounds, "rate_wall": cells / r["wall"],
            "cpu_ms": cpu_ms, "cpu_ms_main": 1e3 * r["cpu_main"] / cells, "projected": 2e3 / cpu_ms}


END_TO_END_HEADER = ("| command | cells | wall s | cells/s (wall, this machine) | CPU-s (all processes) | "
                     "CPU-ms per cell (all) | of which main process | 2-free-core projection (2 / CPU-s per cell) "
                     "| target | load avg |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")


def end_to_end_line(r: dict) -> str:
    compounds = " --compounds " + " ".join(repr(c) if " " in c else c for c in r["compounds"]) if r["compounds"] else ""
    return (f"| cp2image simulate --replicates {r['replicates']}{compounds} --jobs {r['jobs']} | {r['n']} | {r['wall']:.1f} | "
            f"{r['rate_wall']:.0f} | {r['cpu']:.1f} | {r['cpu_ms']:.2f} | {r['cpu_ms_main']:.2f} | "
            f"{r['projected']:.0f} cells/s | ≥ {TARGET_CELLS_PER_S:.0f} cells/s | {r['load']:.1f} |")


# ----------------------------------------------------------------------------- runner section: simulator (benchmarks/run.py)

from runner_support import Row  # noqa: E402
from bench_fixtures import cores  # noqa: E402


def _sim_sizes(ctx) -> list[int]:
    return [100, 400] if ctx.quick else [1000, 3000, 9000]


# Full runs only. One plate of DMSO + taxol: 9 wells of 694-695 cells, the wells of the 100k-cell screen
# (docs/performance.md). Per-cell cost depends on well size: a field (~70 croppable cells) is rendered
# whole however few of its cells a small well keeps, so 3,000 cells over 48 wells cost far more per cell.
END_TO_END_CELLS, END_TO_END_COMPOUNDS = 6250, ("taxol",)


def simulator_names(ctx) -> list[str]:
    full_path = [] if ctx.quick else ["render + segment + measure",  # = render + features rows in --quick
                                      f"end to end: cp2image simulate, {END_TO_END_CELLS} cells"]
    return (["render only"] + full_path + [f"peak RSS vs cells: {n}" for n in _sim_sizes(ctx)])


def simulator_run(ctx) -> list[Row]:
    """The simulator engineer's fresh-process runner (bench_simulator.run_child): each
    figure from its own interpreter, so peak RSS is that run's own. Each run includes a
    fixed start-up (texture bank, imports), so small runs understate the per-cell rate."""
    n_cores = cores()
    sizes = _sim_sizes(ctx)
    if ctx.quick:  # two fresh processes side by side: peak RSS is per process, so unaffected
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(sizes)) as pool:
            futures = {n: pool.submit(run_child, n, measure=False, jobs=1, replicates=1) for n in sizes}
            results = {n: f.result() for n, f in futures.items()}
    else:
        results = {n: run_child(n, measure=False, jobs=1, replicates=1) for n in sizes}
    if ctx.quick:  # the largest memory run doubles as the rate run
        n_rate, jobs_rate, render = sizes[-1], 1, results[sizes[-1]]
    else:
        n_rate, jobs_rate = 3000, n_cores
        render = run_child(n_rate, measure=False, jobs=n_cores, replicates=1)
    rows: list[Row] = []
    rate = render["cells"] / render["wall"]
    rows.append(Row("Simulator", "render only", unit="cells/s", median=rate, min=rate,
                    ratio=render["cells"] / render["cpu"], reference="cells per CPU-second",
                    target="≥ 1,000 cells/s", met=rate >= 1000,
                    note=f"simulate_screen(measure=False), {n_rate} cells, jobs={jobs_rate}, one run incl. start-up"
                         + (" (ran beside the other memory run)" if ctx.quick else "")))
    if not ctx.quick:
        n_full = 400
        full = run_child(n_full, measure=True, jobs=n_cores, replicates=1)
        rate = full["cells"] / full["wall"]
        rows.append(Row("Simulator", "render + segment + measure", unit="cells/s", median=rate, min=rate,
                        ratio=full["cells"] / full["cpu"], reference="cells per CPU-second",
                        target="≥ 150 cells/s", met=rate >= 150,
                        note=f"simulate_screen, {n_full} cells, jobs={n_cores} (crop → segment → measure, as real "
                             "images), incl. start-up"))
        jobs = min(2, n_cores)
        e = cli_end_to_end(END_TO_END_CELLS, jobs=jobs, compounds=END_TO_END_COMPOUNDS)
        rows.append(Row("Simulator", f"end to end: cp2image simulate, {END_TO_END_CELLS} cells", unit="cells/s",
                        median=e["rate_wall"], min=e["rate_wall"], ratio=e["projected"],
                        reference="cells/s on 2 free cores (2 / CPU-s per cell, all processes)",
                        target=f"≥ {TARGET_CELLS_PER_S:.0f} cells/s on 2 cores", met=e["projected"] >= TARGET_CELLS_PER_S,
                        note=f"`cp2image simulate OUT --cells {END_TO_END_CELLS} --replicates 1 --compounds taxol --jobs {jobs}` "
                             f"(9 wells of 694 cells; render + "
                             f"segment + 492 features): {e['cpu_ms']:.2f} CPU-ms per cell over all processes "
                             f"({e['cpu_ms_main']:.2f} in the main one), start-up included; wall rate at load "
                             f"{e['load']:.1f}; 'met' judged on the projection",
                        extra={k: e[k] for k in ("wall", "cpu", "cpu_main", "cpu_ms", "load", "n", "jobs")}))
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


if __name__ == "__main__":
    raise SystemExit(main())

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
    args = parser.parse_args(argv)

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


# ----------------------------------------------------------------------------- runner section: simulator (benchmarks/run.py)

from runner_support import Row  # noqa: E402
from bench_fixtures import cores  # noqa: E402


def _sim_sizes(ctx) -> list[int]:
    return [100, 400] if ctx.quick else [1000, 3000, 9000]


def simulator_names(ctx) -> list[str]:
    full_path = [] if ctx.quick else ["render + segment + measure"]  # = render + features rows in --quick
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

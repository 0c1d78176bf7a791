"""Before/after on one loaded machine: the same commands from two git revisions, interleaved.

Run: `.venv/bin/python benchmarks/compare_revisions.py --old a8c8983 [--new HEAD] [--crops 512] [--cells 600]
[--repeats 1] [--only features simulate]`

The old revision is exported with `git archive` into a temporary folder and run with
`PYTHONPATH` pointing there (same virtual environment, working directory outside the
repository so `python -m` does not pick up this checkout); the new one is this checkout,
or `--new REV` exported the same way (so uncommitted edits in a shared tree stay out).
Each command runs as a fresh process tree sampled by `bench_scale.run_measured`
(wall, CPU-seconds of every process, peak RSS), old and new alternating so that both
see the same machine load. Commands (both revisions, both with 2 workers):

- `cp2image features DATASET --jobs 2` on a copy of the first `--crops` crops of the
  bundled dataset (start-up of the worker pool / LocalCluster included);
- `cp2image simulate OUT --cells N --replicates 1 --jobs 2` (render + segment + measure).

Prints one Markdown table with new/old ratios.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import REPO, run_measured  # noqa: E402


def export(rev: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "cp2image"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main(argv: list[str] | None = None) -> int:
    from cp2image.assets import bundled_dataset_dir
    from cp2image.data import open_dataset, write_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="git revision to compare against (e.g. the commit before a change)")
    parser.add_argument("--new", default=None, help="git revision to measure (default: this working tree)")
    parser.add_argument("--only", nargs="+", default=["features", "simulate"], choices=["features", "simulate"])
    parser.add_argument("--crops", type=int, default=512)
    parser.add_argument("--cells", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        old_tree = export(args.old, tmp / "old")
        ds = open_dataset(bundled_dataset_dir())
        keep = [c for c in ds.cells.columns if c.startswith("Metadata_")]
        source = write_dataset(tmp / "source", np.asarray(ds.images[: args.crops]), ds.cells[keep].iloc[: args.crops])
        env_old = dict(os.environ, PYTHONPATH=str(old_tree))
        env_new = dict(os.environ, PYTHONPATH=str(export(args.new, tmp / "new") if args.new else REPO))
        head = subprocess.run(["git", "rev-parse", "--short", args.new or "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
        new_label = head if args.new else f"{head} + working tree"
        print(f"# {args.old} (old) vs {new_label} (new); {len(os.sched_getaffinity(0))} cores; "
              f"load average {os.getloadavg()[0]:.1f} at start\n")
        rows = ["| command | revision | wall s | items/s (wall) | CPU-s (all processes) | items per CPU-s | "
                "peak RSS main MB | peak RSS tree MB | load avg |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        results: dict[tuple[str, str], list[dict]] = {}
        for rep in range(args.repeats):
            for name, env in (("old", env_old), ("new", env_new)):
                if "features" in args.only:
                    copy = tmp / f"features-{name}-{rep}"
                    shutil.copytree(source, copy)
                    cmd = [sys.executable, "-m", "cp2image", "features", str(copy), "--jobs", "2", "--no-progress"]
                    results.setdefault(("features", name), []).append(run_measured(cmd, env=env, cwd=tmp) | {"n": args.crops})
                if "simulate" in args.only:
                    cmd = [sys.executable, "-m", "cp2image", "simulate", str(tmp / f"sim-{name}-{rep}"), "--cells",
                           str(args.cells), "--replicates", "1", "--jobs", "2", "--no-progress"]
                    results.setdefault(("simulate", name), []).append(run_measured(cmd, env=env, cwd=tmp) | {"n": args.cells})
        for (what, name), runs in results.items():
            r = min(runs, key=lambda x: x["wall"])
            rows.append(f"| {what} | {name} | {r['wall']:.1f} | {r['n'] / r['wall']:.1f} | {r['cpu']:.1f} | "
                        f"{r['n'] / r['cpu']:.1f} | {r['peak_main_mb']:.0f} | {r['peak_tree_mb']:.0f} | {r['load']:.1f} |")
        for what in args.only:
            o = min(results[(what, "old")], key=lambda x: x["wall"])
            n = min(results[(what, "new")], key=lambda x: x["wall"])
            rows.append(f"| {what} | new / old | {n['wall'] / o['wall']:.2f}× | {o['wall'] / n['wall']:.2f}× | "
                        f"{n['cpu'] / o['cpu']:.2f}× | {o['cpu'] / n['cpu']:.2f}× | | | |")
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

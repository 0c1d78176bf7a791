"""CPU milliseconds per crop of `cp2image.features.measure` for two git revisions, same crops, one process each.

Run: `.venv/bin/python benchmarks/compare_features_cpu.py --old 8426bb0 [--new REV] (--dataset DIR | --real-npz NPZ)
[--n 512] [--rounds 2]`

Why: on a shared machine wall time measures the other jobs; CPU time of one process
(`time.process_time`) moves much less. Each revision is exported with `git archive` (the
new one defaults to this working tree) and measures the same frozen crops in a fresh
interpreter, old and new alternating, `--rounds` times. `--dataset` takes `--n` crops
spread evenly over the dataset; `--real-npz` takes them as `bench_features.real_crops` does.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

CHILD = """
import json, os, sys, time
import numpy as np
from cp2image.features import measure
x = np.load(sys.argv[1])
measure(x[:16])  # imports, numba compilation
t, w = time.process_time(), time.perf_counter()
measure(x)
print(json.dumps({"cpu_ms": (time.process_time() - t) / len(x) * 1e3,
                  "wall_ms": (time.perf_counter() - w) / len(x) * 1e3, "load": os.getloadavg()[0]}))
"""


def export(rev: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "cp2image"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def crops(args: argparse.Namespace) -> np.ndarray:
    if args.real_npz:
        from bench_features import real_crops

        return real_crops(Path(args.real_npz), args.n)
    from cp2image.data import open_dataset

    images = open_dataset(Path(args.dataset)).images
    take = np.linspace(0, len(images) - 1, min(args.n, len(images))).astype(int)
    return np.ascontiguousarray(images[take])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", default=None, help="git revision (default: this working tree)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="dataset directory; --n crops spread evenly over it")
    source.add_argument("--real-npz", help="real BBBC021 crops npz (../shared/data/bbbc021-cells/...)")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "crops.npy"
        np.save(path, crops(args))
        trees = {"old": export(args.old, tmp / "old"), "new": export(args.new, tmp / "new") if args.new else REPO}
        print(f"# measure() CPU per crop: {args.old} (old) vs {args.new or 'working tree'} (new), "
              f"{args.n} crops of {args.dataset or args.real_npz}\n")
        print("| round | revision | CPU ms/crop | wall ms/crop | load avg |\n|---:|---|---:|---:|---:|")
        cpu: dict[str, list[float]] = {"old": [], "new": []}
        for r in range(args.rounds):
            for name, tree in trees.items():
                out = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=tmp, capture_output=True, text=True,
                                     check=True, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
                res = json.loads(out.stdout.strip().splitlines()[-1])
                cpu[name].append(res["cpu_ms"])
                print(f"| {r + 1} | {name} | {res['cpu_ms']:.2f} | {res['wall_ms']:.1f} | {res['load']:.1f} |")
        print(f"\nnew / old CPU: {sum(cpu['new']) / sum(cpu['old']):.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

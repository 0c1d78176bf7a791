"""Ingestion speed and memory: `cp2image ingest fields` on a synthetic BBBC021-sized screen.

Run: `.venv/bin/python benchmarks/bench_ingest.py [--fields 8 32] [--nuclei 60] [--features 453]`.

Writes 1024×1280 16-bit TIFF fields (three channels) in the BBBC021 layout with an
image table and a Nuclei.csv of `--features` CellProfiler columns, then runs each
ingestion in a fresh process and prints a Markdown table of wall time, fields/s,
cells/s and the process's peak memory. Peak RSS includes the file-backed pages of the
memory-mapped images.npy being written (reclaimable page cache, about twice the image
bytes when the writer trims skipped cells); peak *anonymous* RSS (sampled from
/proc/self/status) is the heap: one field, one CSV chunk and the cell table, which
`DatasetWriter` keeps until it closes (so that part grows with cells × features).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
H, W = 1024, 1280  # BBBC021 field size


def write_screen(base: Path, n_fields: int, n_nuclei: int, n_features: int, seed: int = 0) -> tuple[Path, Path, Path]:
    import tifffile

    rng = np.random.default_rng(seed)
    root = base / "images"
    rows, objects = [], []
    for i in range(n_fields):
        folder = f"Week1/Week1_{i // 60:03d}"
        (root / folder).mkdir(parents=True, exist_ok=True)
        row = {}
        for w, stain in enumerate(("DAPI", "Tubulin", "Actin"), start=1):
            name = f"F{i:04d}_s1_w{w}.tif"
            tifffile.imwrite(root / folder / name, rng.integers(0, 4096, size=(H, W), dtype=np.uint16))
            row[f"Image_FileName_{stain}"], row[f"Image_PathName_{stain}"] = name, folder
        row.update({"Image_Metadata_Plate_DAPI": f"Week1_{i // 60:03d}", "Image_Metadata_Well_DAPI": f"B{i % 10 + 2:02d}",
                    "Image_Metadata_Compound": "DMSO", "Image_Metadata_Concentration": 0.0})
        rows.append(row)
        xs, ys = rng.uniform(0, W, n_nuclei), rng.uniform(0, H, n_nuclei)
        for k in range(n_nuclei):
            objects.append((i + 1, k + 1, xs[k], ys[k]))
    image_table = base / "BBBC021_v1_image.csv"
    pd.DataFrame(rows).to_csv(image_table, index=False)
    frame = pd.DataFrame(objects, columns=["ImageNumber", "ObjectNumber", "Nuclei_Location_Center_X",
                                           "Nuclei_Location_Center_Y"])
    features = rng.normal(size=(len(frame), n_features))
    names = [f"{('Nuclei', 'Cells', 'Cytoplasm')[j % 3]}_Bench_Feature{j}" for j in range(n_features)]
    frame = pd.concat([frame, pd.DataFrame(features, columns=names)], axis=1)
    objects_csv = base / "Nuclei.csv"
    frame.to_csv(objects_csv, index=False)
    return image_table, objects_csv, root


CHILD = """
import json, resource, sys, threading, time
sys.path.insert(0, {repo!r})
from cp2image.data.ingest import FieldIngestConfig, ingest_fields

peak_anon = [0]
def sample():  # anonymous (heap) memory, excluding file-backed pages of the images.npy memmap
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                peak_anon[0] = max(peak_anon[0], int(line.split()[1]))
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
s = ingest_fields({image!r}, {objects!r}, {out!r}, root={root!r}, config=FieldIngestConfig(chunk_rows={chunk_rows}))
dt = time.perf_counter() - t0
print(json.dumps({{"seconds": dt, "fields": s.n_images, "cells": s.n_written, "border": s.n_skipped_border,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "anon_mb": peak_anon[0] / 1024}}))
"""


def run_once(base: Path, n_fields: int, n_nuclei: int, n_features: int, chunk_rows: int) -> dict:
    image, objects, root = write_screen(base, n_fields, n_nuclei, n_features)
    code = CHILD.format(repo=str(REPO), image=str(image), objects=str(objects), out=str(base / "ds"), root=str(root),
                        chunk_rows=chunk_rows)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--nuclei", type=int, default=60, help="nuclei per field")
    parser.add_argument("--features", type=int, default=453, help="CellProfiler columns in Nuclei.csv")
    parser.add_argument("--chunk-rows", type=int, default=1000, help="object rows read per chunk")
    args = parser.parse_args()
    print(f"Ingest fields: {H}×{W} uint16 fields, {args.nuclei} nuclei/field, {args.features} features, crop 68, "
          f"{args.chunk_rows} object rows per chunk\n")
    print("| fields | cells written | border-skipped | seconds | fields/s | cells/s | peak RSS (MB) "
          "| peak anonymous RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.fields:
        with tempfile.TemporaryDirectory() as tmp:
            r = run_once(Path(tmp), n, args.nuclei, args.features, args.chunk_rows)
        print(f"| {n} | {r['cells']} | {r['border']} | {r['seconds']:.2f} | {r['fields'] / r['seconds']:.1f} "
              f"| {r['cells'] / r['seconds']:.0f} | {r['rss_mb']:.0f} | {r['anon_mb']:.0f} |")


if __name__ == "__main__":
    main()

"""Segmentation failure rates on generated and real crops; prints a Markdown table.

Generated: the bundled CP2Image (assets/models/cp2image-sim) fed test-split
profiles of the bundled dataset (DMSO only, and all compounds). Real: BBBC021
crops from ../shared (each crop/channel scaled to its max → uint8), skipped when
absent. "first pass" is the segmentation with the tolerant retry switched off
and the old rule (cytoplasm < min_cytoplasm_area → failed), i.e. the behaviour
before the retry existed.

    .venv/bin/python benchmarks/bench_segmentation_robustness.py [--n 100] [--real-step 2]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from cp2image.assets import bundled_dataset_dir, bundled_model_dir
from cp2image.data.dataset import open_dataset
from cp2image.features import FAILED_COLUMN, measure
from cp2image.features.segmentation import SegmentationConfig, segment_batch
from cp2image.models import CP2Image

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbbc021-cells" / "bbbc021_cells_68x68.npz"


def _to_uint8(raw: np.ndarray) -> np.ndarray:
    x = raw.astype(np.float32).transpose(0, 3, 1, 2)
    peak = x.reshape(len(x), 3, -1).max(axis=2)[:, :, None, None]
    return np.clip(np.rint(x / np.maximum(peak, 1.0) * 255.0), 0, 255).astype(np.uint8)


def _row(name: str, images: np.ndarray) -> str:
    cfg = SegmentationConfig()
    first = segment_batch(images, config=SegmentationConfig(fallback_threshold_factor=0))
    old_fail = ~first.ok | (first.cytoplasm.reshape(len(images), -1).sum(1) < cfg.min_cytoplasm_area)
    frame = measure(images)
    failed = frame[FAILED_COLUMN].to_numpy()
    no_cyto = frame["Cytoplasm_AreaShape_Area"].isna().to_numpy() & ~failed
    ok = ~failed & ~no_cyto
    ratio = np.median(frame.loc[ok, "Cells_AreaShape_Area"] / frame.loc[ok, "Nuclei_AreaShape_Area"])
    return (f"| {name} | {len(images)} | {old_fail.mean():.1%} | {failed.mean():.1%} | {no_cyto.mean():.1%} "
            f"| {ratio:.2f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100, help="generated crops per row")
    ap.add_argument("--real-step", type=int, default=2, help="every k-th real crop")
    args = ap.parse_args()
    ds = open_dataset(bundled_dataset_dir())
    test = ds.cells[ds.cells["Metadata_Split"] == "test"]
    model = CP2Image.from_pretrained(bundled_model_dir())
    print("| crops | n | failed before (first pass, old rule) | failed now (no nucleus) "
          "| empty cytoplasm now (Cytoplasm_* NaN) | median cell/nucleus area |")
    print("|---|---|---|---|---|---|")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the model's ±10σ clipping notice
        for label, rows in (("generated, DMSO test profiles", test[test["Metadata_Compound"] == "DMSO"]),
                            ("generated, all test profiles", test)):
            rows = rows.sample(min(args.n, len(rows)), random_state=0)
            print(_row(label, model.generate(rows)))
    idx = np.linspace(0, len(ds.cells) - 1, min(args.n * 4, len(ds.cells))).astype(int)
    print(_row("bundled simulated crops", np.asarray(ds.images[idx])))
    if REAL.exists():
        with np.load(REAL, allow_pickle=False) as data:
            raw = data["images"][:: args.real_step]
        print(_row(f"real BBBC021 crops (every {args.real_step})", _to_uint8(raw)))
    else:
        print(f"(real crops skipped: {REAL} absent)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

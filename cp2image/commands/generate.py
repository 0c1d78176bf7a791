"""`cp2image generate`: CellProfiler profiles (CSV/parquet) → single-cell images.

    cp2image generate --profiles cells.csv --out generated/ [--model org/name | DIR]

Writes `images.npy` (uint8 (N, 3, H, W), channel order DNA, tubulin, actin) unless
`--format png`, one colour PNG per row (DNA blue, tubulin red, actin green) unless
`--format npy`, and `index.csv` mapping input rows to files. Feature columns are
matched by name; extra columns (Metadata_*, ...) are ignored. Comma-, semicolon- and
tab-separated files are recognised (semicolon/tab files with decimal commas too).

Rows are numbered as a spreadsheet shows them (CSV: the header is row 1, the first cell
row 2; parquet: the first cell is row 1), in messages, in index.csv's `row` column and in
the PNG names (`row_00002.png`), the same numbering as the app's upload page.

Where the model folder carries a critic (`critic/`), each image is refined until the
critic reads it as its profile (`cp2image.models.refine`); `--no-refine` writes the
generator's images as drawn.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="turn CellProfiler profiles into cell images",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profiles", required=True, help="CSV or parquet with the model's feature columns")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default=None,
                   help="model folder, Hub repo id or 'bundled[:name]' (default: $CP2IMAGE_MODEL, else bundled)")
    p.add_argument("--format", choices=("png", "npy", "both"), default="both")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--drop-incomplete", action="store_true",
                   help="skip rows with NaN/inf features instead of failing (they are listed in index.csv)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.add_argument("--no-refine", action="store_true",
                   help="the generator's images as drawn, without critic-guided refinement (on by default where "
                        "the model folder carries a critic)")
    p.set_defaults(run=run)


def _read_profiles(path: Path):
    """The profiles table, indexed by the row numbers messages and files use (see the module docstring)."""
    import csv

    import pandas as pd

    from cp2image.analysis.profiles import SEPARATORS, sniff_separator, spreadsheet_rows

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such profiles file")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
        frame.index = pd.RangeIndex(1, 1 + len(frame), name="row")
    else:
        try:
            with open(path, "rb") as fh:
                sep, decimal = sniff_separator(fh.read(65536))
            with open(path, newline="", encoding="utf-8-sig") as fh:
                header = next(csv.reader(fh, delimiter=sep), [])
            frame = spreadsheet_rows(pd.read_csv(path, encoding="utf-8-sig", sep=sep, decimal=decimal,
                                                 skip_blank_lines=False))
            if sep != ",":
                print(f"note: {path.name} read as {SEPARATORS[sep]}-separated"
                      f"{' with decimal commas' if decimal == ',' else ''}", file=sys.stderr)
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as CSV UTF-8") from err
        except pd.errors.EmptyDataError as err:
            raise ValueError(f"{path}: the file is empty; it needs a header row of feature names") from err
        except pd.errors.ParserError as err:
            raise ValueError(f"{path}: not a well-formed CSV ({str(err).strip()})") from err
        names = [h.strip() for h in header]
        duplicated = sorted({h for h in names if names.count(h) > 1})
        if duplicated:  # pandas would silently rename them to "name.1"
            raise ValueError(f"{path}: duplicated column(s) {duplicated[:5]}; keep one column per feature")
    if len(frame) == 0:
        raise ValueError(f"{path}: no rows; add one row per cell")
    return frame


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd
    from PIL import Image

    from cp2image.analysis.render import composite
    from cp2image.data.columns import metadata_columns
    from cp2image.models.hub import load_model

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"{out} is not empty; pass --overwrite or choose another --out")
    loaded = load_model(args.model)
    if loaded.notice:
        print(f"note: {loaded.notice}", file=sys.stderr)
    model = loaded.model
    frame = _read_profiles(Path(args.profiles))
    raw = frame.reindex(columns=model.feature_names)
    missing = [f for f in model.feature_names if f not in frame.columns]
    if missing:
        model.raw_matrix(frame)  # raises the standard error listing the missing features
    numeric = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    complete = np.isfinite(numeric).all(axis=1)
    numbers = frame.index.to_numpy()  # spreadsheet row numbers (CSV header = row 1; parquet from 1)
    counted = "spreadsheet row numbers: the header is row 1" if numbers[:1].tolist() == [2] else "first row = 1"
    if not complete.all() and not args.drop_incomplete:
        bad = numbers[~complete]
        raise ValueError(f"{len(bad)} row(s) have missing/non-numeric features (rows {bad[:5].tolist()}"
                         f"{' ...' if len(bad) > 5 else ''}; {counted}); fix them or pass --drop-incomplete")
    keep = np.flatnonzero(complete)
    images = model.generate(numeric[keep], batch_size=args.batch_size, refine=False if args.no_refine else None)
    out.mkdir(parents=True, exist_ok=True)
    index = pd.DataFrame({"row": numbers, "generated": complete, "image_index": -1, "png": ""})
    index.loc[keep, "image_index"] = np.arange(len(keep))
    if args.format in ("npy", "both"):
        np.save(out / "images.npy", images)
    if args.format in ("png", "both"):
        rgb = composite(images)
        width = max(5, len(str(int(numbers.max()))))
        for i, position in enumerate(keep):
            name = f"row_{int(numbers[position]):0{width}d}.png"
            Image.fromarray(rgb[i]).save(out / name)
            index.loc[position, "png"] = name
    meta = metadata_columns(frame)
    pd.concat([index, frame[meta].reset_index(drop=True)], axis=1).to_csv(out / "index.csv", index=False)
    print(f"generated {len(keep)} image(s) of {model.image_size}×{model.image_size} with {loaded.source} → {out}")
    if len(keep) < len(frame):
        skipped = numbers[~complete]
        print(f"skipped {len(frame) - len(keep)} incomplete row(s): rows {skipped[:10].tolist()}"
              f"{' ...' if len(skipped) > 10 else ''} ({counted}); see index.csv", file=sys.stderr)
    return 0

"""`cp2image perturb`: sweep one CellProfiler feature of chosen cells and see the images change.

    cp2image perturb --feature Nuclei_AreaShape_Area --out sweeps/ [--model DIR] [--data DATASET]
                     [--cell 123 | --compound DMSO --split test --n-cells 4 --seed 0]
                     [--span 2 --steps 9 --unit sd] [--mode coupled|single] [--no-measure] [--no-refine]
    cp2image perturb --fit-coupling [--model DIR] [--data DATASET] [--split train]

Modes: "coupled" (default, "with its correlated features": the other features follow
their conditional expectation given the swept one, from the feature coupling stored
beside the model) or "single" ("this feature only", the paper's Fig. 4c sweep).
Requests outside the feature's valid range are clipped to it, and said so. Where the
model folder carries a critic, each image is refined until the critic reads it as its
requested profile (`cp2image.models.refine`); `--no-refine` shows the generator's images
as drawn.

Writes to --out: one colour PNG per step (`cell<ID>_step<k>.png`; DNA blue, tubulin
red, actin green), `sweep.csv` (one row per cell and step: asked, requested, clipped,
measured), `summary.csv` (per cell: slope, Spearman ρ, clipped steps), `moved_with.csv`
(coupled mode: the other features that moved, raw and SD units) and the figure panel
`panel.png` / `panel.svg`.

`--fit-coupling` fits the feature coupling (Ledoit–Wolf covariance in the model's
normalised space, valid feature ranges) on the dataset's training split and writes
`feature_coupling.safetensors` into the (local) model folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.columns import COMPOUND, CONCENTRATION, SPLIT

MOVED_SHOWN = 8  # partners printed to the terminal (all of them go to moved_with.csv)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("perturb", help="sweep one feature of chosen cells (coupled or single) → images, CSV, panel",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None,
                   help="model folder, Hub repo id or 'bundled[:name]' (default: $CP2IMAGE_MODEL, else bundled)")
    p.add_argument("--data", default=None, help="dataset folder (default: the bundled simulated BBBC021)")
    p.add_argument("--feature", help="CellProfiler feature to sweep, e.g. Nuclei_AreaShape_Area")
    sel = p.add_argument_group("cells (default: the first DMSO cell of the test split)")
    sel.add_argument("--cell", action="append", default=None, metavar="ID",
                     help="row label of a cell in cells.parquet (repeatable); overrides the filters below")
    sel.add_argument("--compound", default="DMSO", help="compound of the cells to sweep (default DMSO)")
    sel.add_argument("--concentration", type=float, default=None, help="concentration in µM (default: any)")
    sel.add_argument("--split", default=None,
                     help="Metadata_Split of the cells to sweep ('any' for all; default test). "
                          "With --fit-coupling: the split the coupling is fitted on (default train)")
    sel.add_argument("--n-cells", type=int, default=1, help="how many matching cells (default 1)")
    sel.add_argument("--seed", type=int, default=None, help="draw the cells at random with this seed (default: first N)")
    p.add_argument("--span", type=float, default=2.0, help="sweep ± this much (default 2)")
    p.add_argument("--steps", type=int, default=9, help="images per sweep (default 9)")
    p.add_argument("--unit", choices=("sd", "raw"), default="sd",
                   help="sd: SDs of the dataset's DMSO cells (default); raw: the feature's own units")
    p.add_argument("--mode", choices=("coupled", "single"), default="coupled",
                   help="coupled: with its correlated features (default); single: this feature only")
    p.add_argument("--no-measure", action="store_true", help="skip measuring the feature back on the images")
    p.add_argument("--no-refine", action="store_true",
                   help="the generator's images as drawn, without critic-guided refinement (on by default where "
                        "the model folder carries a critic)")
    p.add_argument("--out", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.add_argument("--fit-coupling", action="store_true",
                   help="fit the model's feature coupling on --data's --split (default train) and store it")
    p.set_defaults(run=run)


def _open(args: argparse.Namespace):
    from cp2image.assets import bundled_dataset_dir
    from cp2image.data.dataset import open_dataset
    from cp2image.models.hub import load_model

    loaded = load_model(args.model)
    if loaded.notice:
        print(f"note: {loaded.notice}", file=sys.stderr)
    dataset = open_dataset(args.data or bundled_dataset_dir())
    missing = [f for f in loaded.model.feature_names if f not in dataset.cells.columns]
    if missing:
        raise ValueError(f"the dataset lacks {len(missing)} of the model's features (e.g. {missing[:3]}); "
                         "use a dataset measured with the model's features")
    return loaded, dataset


def _fit(args: argparse.Namespace) -> int:
    from cp2image.analysis.coupling import fit_coupling, save_coupling

    loaded, dataset = _open(args)
    if loaded.ref.kind.value == "hub":
        raise ValueError("--fit-coupling writes into the model folder; download the Hub model to a local folder "
                         "and pass that folder as --model")
    split = args.split or "train"
    cells = dataset.cells
    if split != "any":
        if SPLIT not in cells.columns:
            raise ValueError("the dataset has no Metadata_Split column; pass --split any to fit on every cell")
        cells = cells.loc[cells[SPLIT].astype(str) == split]
    if len(cells) < 2:
        raise ValueError(f"the dataset has {len(cells)} cells in split {split!r}; need at least 2")
    coupling = fit_coupling(loaded.model, cells, source=f"{dataset.path.name}, split {split}")
    path = save_coupling(coupling, loaded.folder)
    print(f"fitted on {coupling.n_cells} cells (Ledoit–Wolf shrinkage {coupling.shrinkage:.4f}); wrote {path}")
    return 0


def _select(cells, args: argparse.Namespace):
    import numpy as np

    split = args.split or "test"

    if args.cell:
        labels = []
        for text in args.cell:
            label = int(text) if text.lstrip("-").isdigit() else text
            if label not in cells.index:
                raise ValueError(f"no cell with row label {text!r} in the dataset (labels run "
                                 f"{cells.index.min()}…{cells.index.max()})")
            labels.append(label)
        return cells.loc[labels]
    mask = cells[COMPOUND].astype(str) == args.compound
    if args.concentration is not None:
        mask &= np.isclose(cells[CONCENTRATION].astype(float), args.concentration)
    if split != "any" and SPLIT in cells.columns:
        mask &= cells[SPLIT].astype(str) == split
    chosen = cells.loc[mask]
    if chosen.empty:
        raise ValueError(f"no cells of compound {args.compound!r}"
                         + (f" at {args.concentration:g} µM" if args.concentration is not None else "")
                         + (f" in split {split!r}" if split != "any" else "") + "; check --compound/--split")
    n = min(args.n_cells, len(chosen))
    if args.seed is not None:
        picks = np.sort(np.random.default_rng(args.seed).choice(len(chosen), n, replace=False))
        return chosen.iloc[picks]
    return chosen.iloc[:n]


def run(args: argparse.Namespace) -> int:
    if args.fit_coupling:
        return _fit(args)
    if not args.feature or not args.out:
        raise ValueError("--feature and --out are required (or pass --fit-coupling)")
    if args.n_cells < 1 or args.steps < 2:
        raise ValueError("--n-cells must be ≥ 1 and --steps ≥ 2")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"{out} is not empty; pass --overwrite or choose another --out")

    from tqdm import tqdm

    from cp2image.analysis.coupling import load_coupling
    from cp2image.analysis.space import resolve_feature

    loaded, dataset = _open(args)
    model = loaded.model
    feature = resolve_feature(args.feature, model.feature_names)
    coupling = load_coupling(loaded.folder)  # CouplingError (a ValueError) names what is wrong with the file
    if args.mode == "coupled" and coupling is None:
        raise ValueError(f"model folder {loaded.folder} has no feature_coupling.safetensors, so 'coupled' cannot "
                         f"run; fit one with `cp2image perturb --fit-coupling --model {loaded.folder}` or pass "
                         "--mode single")
    cells = dataset.cells
    chosen = _select(cells, args)
    reference = cells.loc[cells[COMPOUND].astype(str) == "DMSO"] if args.unit == "sd" else None
    out.mkdir(parents=True, exist_ok=True)
    results = [_sweep_cell(model, label, profile, feature, coupling, reference, out, args)
               for label, profile in tqdm(list(chosen.iterrows()), desc=f"sweeping {feature}", unit="cell")]
    summary = _write_tables(results, list(chosen.index), feature, out, args)
    _print_summary(results, summary, chosen.index[0], feature, out, args)
    return 0


def _sweep_cell(model, label, profile, feature: str, coupling, reference, out: Path, args: argparse.Namespace):
    """One cell's sweep; its images as OUT/cell<label>_step<k>.png; notes and clip notices on stderr."""
    import warnings

    from PIL import Image
    from tqdm import tqdm

    from cp2image.analysis.perturb import sweep_feature
    from cp2image.analysis.render import composite

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sweep_feature(model, profile[model.feature_names].astype(float), feature, mode=args.mode,
                            coupling=coupling, n_steps=args.steps, span=args.span, unit=args.unit,
                            reference=reference, measure_back=not args.no_measure,
                            refine=False if getattr(args, "no_refine", False) else None)
    for w in caught:
        tqdm.write(f"cell {label}: note: {w.message}", file=sys.stderr)
    rgb = composite(res.images)  # (n, H, W, 3) uint8
    for k, image in enumerate(rgb):
        Image.fromarray(image).save(out / f"cell{label}_step{k}.png")
    if res.clip_notice:
        tqdm.write(f"cell {label}: {res.clip_notice}", file=sys.stderr)
    return res


def _write_tables(results: list, labels: list, feature: str, out: Path, args: argparse.Namespace):
    """sweep.csv, summary.csv, moved_with.csv (coupled) and panel.png/svg; returns the summary rows."""
    import pandas as pd

    from cp2image.analysis import export, panels
    from cp2image.analysis.perturb import SWEEP_MODES

    pd.concat([res.table().assign(cell=label) for res, label in zip(results, labels)],
              ignore_index=True).to_csv(out / "sweep.csv", index=False)
    rows = [{"cell": label, "feature": feature, "mode": args.mode, "slope": res.slope,
             "spearman_rho": res.spearman_rho, "clipped_steps": res.n_clipped,
             "clip_notice": res.clip_notice or "", "note": res.note or ""}
            for res, label in zip(results, labels)]
    pd.DataFrame(rows).to_csv(out / "summary.csv", index=False)
    moved = [res.moved.assign(cell=label) for res, label in zip(results, labels) if res.moved is not None]
    if moved:
        pd.concat(moved, ignore_index=True).to_csv(out / "moved_with.csv", index=False)
    title = f"{feature} swept ±{args.span:g} {'SD' if args.unit == 'sd' else 'raw units'} ({SWEEP_MODES[args.mode]})"
    panel = panels.perturbation_grid(results, title=title, scale_bar_um=10.0)
    for fmt in ("png", "svg"):
        export.save(panel, out / f"panel.{fmt}")
    return rows


def _print_summary(results: list, summary: list[dict], first_label, feature: str, out: Path, args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    from cp2image.analysis.perturb import SWEEP_MODES

    print(f"{feature}, {args.mode} ({SWEEP_MODES[args.mode]}), {len(results)} cell(s), {args.steps} steps → {out}")
    for row in summary:
        slope = "n/a" if row["slope"] is None else f"{row['slope']:.2f}"
        rho = "n/a" if row["spearman_rho"] is None else f"{row['spearman_rho']:.2f}"
        print(f"  cell {row['cell']}: slope {slope} (1 = changed by what was asked), Spearman ρ {rho}, "
              f"{row['clipped_steps']} step(s) clipped")
    if any(res.moved is not None for res in results):
        top = results[0].moved_with(MOVED_SHOWN)
        print(f"  moved with it (cell {first_label}, first → last step):")
        for _, r in top.iterrows():
            print(f"    {r['feature']}: {r['from']:,.4g} → {r['to']:,.4g} ({r['shift_sd']:+.2f} SD)")
    frame = pd.DataFrame(summary)
    finite = frame["slope"].dropna()
    if len(results) > 1 and len(finite):
        print(f"  median slope {np.median(finite):.2f}, median ρ {frame['spearman_rho'].dropna().median():.2f}")

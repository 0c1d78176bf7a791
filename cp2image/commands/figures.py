"""`cp2image figures`: the documentation figures, regenerated from a model and a dataset.

    cp2image figures panels [--model DIR] [--dataset DIR] [--out docs/figures] [--only NAME ...]
    cp2image figures simulated DATASET OUT.png [--per-row 6] [--seed 0]
    cp2image figures compare MODEL DATASET OUT.png [--split test,val] [--title T]

`panels` writes the analysis panels (paper Fig. 4c, 5a, 5b/c; see
cp2image.analysis.examples) as PNG, SVG and CSV, for the bundled model and dataset by
default. `simulated` writes one row of example crops per MoA and per latrunculin B
dose of a simulated dataset (cp2image.data.simulate.examples). `compare` shows one
held-out cell per MoA (the first in the split with every model feature finite): its
crop above the image the model generates from its measured features.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("figures", help="regenerate the documentation figures (analysis panels, simulated crops)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="figures_command", metavar="FIGURE", required=True)
    panels = verbs.add_parser("panels", help="the analysis panels: perturbation, interpolation, latrunculin B")
    panels.add_argument("--model", type=Path, default=None, help="model folder (default: the bundled model)")
    panels.add_argument("--dataset", type=Path, default=None, help="dataset folder (default: the bundled dataset)")
    panels.add_argument("--out", type=Path, default=Path("docs/figures"), help="output folder (default docs/figures)")
    panels.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="write only these panels (e.g. panel-perturbation panel-perturbation-single)")
    panels.set_defaults(run=run_panels)
    simulated = verbs.add_parser("simulated", help="example crops of a simulated dataset, one row per MoA / dose")
    simulated.add_argument("dataset", help="simulated dataset folder")
    simulated.add_argument("out", help="figure file to write (e.g. docs/figures/simulated-examples.png)")
    simulated.add_argument("--per-row", type=int, default=6, help="crops per row (default 6)")
    simulated.add_argument("--seed", type=int, default=0, help="which crops are picked (default 0)")
    simulated.set_defaults(run=run_simulated)
    compare = verbs.add_parser("compare", help="held-out originals above their generated images, one cell per MoA")
    compare.add_argument("model", type=Path, help="model folder")
    compare.add_argument("dataset", type=Path, help="dataset folder with Metadata_Split and Metadata_MoA")
    compare.add_argument("out", type=Path, help="PNG to write (e.g. docs/figures/generated-vs-original-real.png)")
    compare.add_argument("--split", default="test,val", help="held-out split(s), comma-separated (default test,val)")
    compare.add_argument("--title", default="Held-out cells, one per MoA: originals (top), generated from their "
                                             "features (bottom)", help="figure title")
    compare.set_defaults(run=run_compare)


def run_panels(args: argparse.Namespace) -> int:
    import logging

    from ..analysis.coupling import load_coupling
    from ..analysis.examples import build_example_panels, write_example_panels
    from ..assets import bundled_dataset_dir, bundled_model_dir
    from ..data.dataset import open_dataset
    from ..models import CP2Image

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model_dir = args.model or bundled_model_dir()
    model = CP2Image.from_pretrained(model_dir)
    ds = open_dataset(args.dataset or bundled_dataset_dir())
    built = build_example_panels(model, ds.cells, ds.images, coupling=load_coupling(model_dir))
    if args.only:
        unknown = sorted(set(args.only) - set(built))
        if unknown:
            raise ValueError(f"unknown panel(s) {unknown}; built: {sorted(built)}")
        built = {name: built[name] for name in args.only}
    for path in write_example_panels(built, args.out):
        print(f"wrote {path}")
    if args.only is None or "panel-latrunculin-line" in args.only:
        from ..analysis.examples import dose_line_measured
        from ..analysis.export import write_atomic

        response, puncta = dose_line_measured(model, ds.cells, ds.images)
        summary = response.summary()
        print(f"panel-latrunculin-line measured back: {summary['features_asked']} features asked to move > 0.5 SD, "
              f"{summary['right_way']:.0%} moved the right way, median measured/asked "
              f"{summary['median_measured_over_asked']:.2f}")
        path = write_atomic(Path(args.out) / "panel-latrunculin-line-puncta.csv", puncta.to_csv(index=False).encode())
        print(f"panel-latrunculin-line actin puncta per generated crop along the line: "
              f"{' '.join(str(n) for n in puncta['generated_puncta'])} (real crops at the end dose: "
              f"{puncta['real_end_dose_puncta'].iloc[0]:.1f} per crop); wrote {path}")
    for name in ("panel-perturbation", "panel-perturbation-single"):
        if name not in built:
            continue
        for _, row in built[name].data.groupby("feature", sort=False).first().iterrows():
            print(f"{name} {row.name}: slope {row['slope']}, Spearman ρ {row['spearman_rho']}")
    return 0


def run_simulated(args: argparse.Namespace) -> int:
    from ..data.dataset import open_dataset
    from ..data.simulate.examples import examples_figure

    ds = open_dataset(args.dataset)
    fig = examples_figure(ds.images, ds.cells, per_row=args.per_row, seed=args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    import numpy as np

    from ..analysis import export, panels
    from ..data.columns import MOA
    from ..data.dataset import open_dataset
    from ..models import CP2Image

    model = CP2Image.from_pretrained(args.model)
    ds = open_dataset(args.dataset)
    rows = np.sort(np.concatenate([ds.split_indices(s.strip()) for s in args.split.split(",")]))
    values = ds.cells[list(model.feature_names)].iloc[rows].to_numpy(dtype=np.float64)
    positions = rows[np.isfinite(values).all(axis=1)]  # row i of the table is image i
    moas = ds.cells[MOA].iloc[positions].astype(str).reset_index(drop=True)
    index = positions[moas.groupby(moas, sort=True).head(1).index.to_numpy()]
    if len(index) == 0:
        raise ValueError(f"{args.dataset}: no held-out cell with every model feature finite in split(s) {args.split}")
    picked = ds.cells.iloc[index].reset_index(drop=True)
    original = np.asarray(ds.images[index])
    generated = model.generate(picked)
    captions = [str(m)[:16] for m in picked[MOA]]
    panel = panels.image_grid([original, generated], captions=[captions, captions],
                              row_labels=["original", "generated"], title=args.title, scale_bar_um=10.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(export.to_png(panel, dpi=150))
    print(f"wrote {args.out} ({len(index)} cells)")
    return 0

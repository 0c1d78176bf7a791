"""Feature-control table (issue 13): does a generated cell change by what was asked?

For each bundled model: the paper's four Fig. 4c features, Cells_AreaShape_Area and an
actin and a tubulin intensity feature are swept ±2 SD (SD of the training DMSO cells,
9 steps) on held-out DMSO cells, in the coupled mode ("with its correlated
features") and the single mode ("this feature only"), and measured back with
`cp2image.features.measure`. Reported: median slope (measured change / requested
change; orientation compared on its 180° period) and median Spearman ρ over cells.
Target (coupled): median ρ ≥ 0.9 and median slope ≥ 0.5 for every feature.

Run: `.venv/bin/python benchmarks/bench_control.py [--cells 12] [--models sim real] [--out DIR] [--no-pose]
[--no-refine] [--refine-json '{"sweeps": true, "sweep_smoothness": 100}'] [--refine-single]`
Images come from `sweep_feature`, as the app's: the orientation sweep turns each cell to
its requested nucleus angle (pose control, `cp2image.models.pose`), the other sweeps
show the generator's images as drawn; `--no-pose` measures the raw generator (the
paper's) for every sweep, for the ablation. Where the model folder carries a critic, coupled
sweeps are refined where its `refine.json` says `sweeps: true` (`cp2image.models.refine`;
neither bundled model does); `--no-refine` measures the generator's images as drawn
("this feature only" sweeps are never refined by default, `cp2image.analysis.perturb`).
`--refine-json` overrides fields of the folder's `refine.json` (the refinement ablation, e.g.
joint refinement of each sweep with `sweep_smoothness`), `--refine-single` refines the
single sweeps the same way. The note gives the process's CPU seconds.
The real-cell model is measured on held-out real DMSO cells from
`data/bbbc021-real` (`$CP2IMAGE_REAL_DATASET`). A dataset is complete when it opens
(`cp2image.data.open_dataset`: datasets are renamed into place only when fully written,
and the cells file is checked against its recorded SHA-256); otherwise the real row says
why it was skipped. A model folder without a stored
feature coupling gets one fitted in memory on its dataset's training split (said so).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cp2image.analysis import control  # noqa: E402
from cp2image.assets import REAL_CELLS_MODEL_NAME, bundled_dataset_dir, bundled_model_dir  # noqa: E402

REAL_DATASET = Path(os.environ.get("CP2IMAGE_REAL_DATASET", "data/bbbc021-real"))
MODEL_LABELS = ("sim", "real")
HELD_OUT = ("val", "test")


@dataclass
class Setup:
    """What one model is measured on, or why it is not."""

    label: str
    model_dir: Path
    dataset_dir: Path
    skip: str | None = None  # reason, when it cannot be measured here


def setups() -> dict[str, Setup]:
    real = Setup("real", bundled_model_dir(REAL_CELLS_MODEL_NAME), REAL_DATASET)
    problem = _incomplete(REAL_DATASET)
    if problem:
        real.skip = (f"no held-out real cells: {problem} (set CP2IMAGE_REAL_DATASET to an "
                     "ingested real BBBC021 dataset)")
    return {"sim": Setup("sim", bundled_model_dir(), bundled_dataset_dir()), "real": real}


def _incomplete(path: Path) -> str | None:
    """Why `path` is not a finished dataset, or None: the dataset's own checks (`open_dataset`), not a marker file."""
    from cp2image.data.dataset import DatasetError, open_dataset

    try:
        open_dataset(path, validate=False)
    except DatasetError as err:
        return str(err)
    return None


def _split(cells: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(training cells, training DMSO cells, held-out DMSO cells), finite features only."""
    if "Metadata_Split" not in cells.columns:
        raise ValueError("the dataset has no Metadata_Split column; held-out cells cannot be told apart")
    finite = np.isfinite(cells[names].to_numpy(dtype=np.float64)).all(axis=1)
    cells = cells.loc[finite]
    split = cells["Metadata_Split"].astype(str)
    dmso = cells["Metadata_Compound"].astype(str) == "DMSO"
    train = cells.loc[split == "train"]
    return train, cells.loc[(split == "train") & dmso], cells.loc[split.isin(HELD_OUT) & dmso]


def measure_model(setup: Setup, *, n_cells: int, seed: int = 0, progress: bool = True, pose: bool = True,
                  refine: bool = True, refine_fields: dict | None = None,
                  refine_single: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(per-sweep table, per feature × mode summary, note) for one model; ``pose=False``, ``refine=False``:
    the raw generator. ``refine_fields`` overrides fields of the folder's `refine.json` (the ablation:
    e.g. ``{"sweeps": true, "sweep_smoothness": 10}``)."""
    import dataclasses

    from cp2image.analysis.coupling import fit_coupling, load_coupling
    from cp2image.data.dataset import open_dataset
    from cp2image.models import CP2Image

    model = CP2Image.from_pretrained(setup.model_dir)
    model.pose_control = pose
    if refine_fields:
        if model.critic is None:
            raise ValueError(f"{setup.model_dir} has no critic: --refine-json cannot apply")
        model.refinement = dataclasses.replace(model.critic.default_config(), **refine_fields)
    if not refine:
        model.refinement = None
    names = list(model.feature_names)
    cells = open_dataset(setup.dataset_dir).cells
    missing = [f for f in names if f not in cells.columns]
    if missing:
        raise ValueError(f"{setup.dataset_dir} lacks {len(missing)} of the model's features, e.g. {missing[:3]}")
    train, train_dmso, held_dmso = _split(cells, names)
    if len(held_dmso) < n_cells:
        raise ValueError(f"only {len(held_dmso)} held-out DMSO cells in {setup.dataset_dir}; need {n_cells}")
    try:
        coupling = load_coupling(setup.model_dir)
        how, why_not = "stored with the model", "none stored with the model"
    except ValueError as err:  # CouplingError: stale (model retrained) or corrupt; measure anyway, and say so
        coupling, why_not = None, f"the stored one is unusable: {err}"
    if coupling is None:
        coupling = fit_coupling(model, train, source=f"{setup.dataset_dir} train split (in memory)")
        how = f"fitted in memory on {coupling.n_cells} training cells ({why_not})"
    picks = np.sort(np.random.default_rng(seed).choice(len(held_dmso), n_cells, replace=False))
    swept = held_dmso.iloc[picks]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(swept) * len(control.CONTROL_FEATURES) * 2, desc=f"control {setup.label}", unit="sweep")

    def tick(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolation warnings: the clipped steps are counted instead
        sweeps = control.control_sweeps(model, swept, reference=train_dmso, coupling=coupling, progress=tick,
                                        config=control.ControlConfig(refine_single=refine_single))
    if bar is not None:
        bar.close()
    sweeps.insert(0, "model", setup.model_dir.name)
    summary = control.control_summary(sweeps)
    summary.insert(0, "model", setup.model_dir.name)
    note = (f"{setup.model_dir.name}: {n_cells} held-out DMSO cells of {setup.dataset_dir.name} "
            f"(splits {'/'.join(HELD_OUT)}), SD from {len(train_dmso)} training DMSO cells; coupling {how}; "
            f"pose control {'on for the orientation sweep' if model.controls_pose else 'off'}; "
            f"refinement {_refinement(model, refine_single)}")
    return sweeps, summary, note


def _refinement(model, refine_single: bool = False) -> str:
    """How the sweeps are refined, in words (for the note)."""
    cfg = model.refinement
    if cfg is None:
        return "off" + ("" if model.can_refine else " (no critic in the model folder)")
    how = (f"jointly along each sweep (smoothness μ {cfg.sweep_smoothness:g})" if cfg.sweep_smoothness > 0
           else "each step on its own")
    settings = f"K {cfg.steps}, lr {cfg.lr:g}, prior {cfg.prior_weight:g}, critic r ≥ {cfg.min_r:g}"
    coupled = f"coupled sweeps {how} ({settings})" if cfg.sweeps else "coupled sweeps as drawn (the model's settings)"
    single = f"single sweeps {how} (--refine-single)" if refine_single else "single sweeps as drawn"
    return f"{coupled}; {single}"


# ----------------------------------------------------------------------------- runner hook


def names(ctx) -> list[str]:
    """Row names for benchmarks/run.py: one per model × control feature."""
    return [f"{label}: {f}" for label in MODEL_LABELS for f in control.CONTROL_FEATURES]


def run(ctx) -> list:
    """benchmarks/run.py rows: coupled median slope as the figure; ρ and the single mode in the note."""
    from runner_support import Row, unavailable

    n_cells = 8 if ctx.quick else 12
    rows = []
    for label, setup in setups().items():
        if setup.skip:
            rows += [unavailable("Feature control", f"{label}: {f}", setup.skip) for f in control.CONTROL_FEATURES]
            continue
        _, summary, note = measure_model(setup, n_cells=n_cells, progress=False)
        for f in control.CONTROL_FEATURES:
            got = summary.loc[summary["feature"] == f].set_index("mode")
            if "coupled" not in got.index or not got.loc["coupled", "n_sweeps"]:
                rows.append(unavailable("Feature control", f"{label}: {f}", "no measurable sweep"))
                continue
            c = got.loc["coupled"]
            s = got.loc["single"] if "single" in got.index else None
            single = f"single: slope {s['median_slope']:.2f}, ρ {s['median_rho']:.2f}" if s is not None else ""
            rows.append(Row("Feature control", f"{label}: {f}", unit="median slope (coupled)",
                            median=float(c["median_slope"]),
                            target=f"ρ ≥ {control.RHO_TARGET} and slope ≥ {control.SLOPE_TARGET}", met=bool(c["met"]),
                            note=f"coupled ρ {c['median_rho']:.2f} over {int(c['n_sweeps'])} cells; {single}; {note}"))
    return rows


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=12, help="held-out DMSO cells per model (≥ 8)")
    parser.add_argument("--models", nargs="+", choices=MODEL_LABELS, default=list(MODEL_LABELS))
    parser.add_argument("--seed", type=int, default=0, help="which held-out cells are drawn")
    parser.add_argument("--out", type=Path, default=None, help="also write control-sweeps.csv and control-summary.csv")
    parser.add_argument("--no-pose", action="store_true",
                        help="measure the raw generator: the orientation sweep does not turn cells either")
    parser.add_argument("--no-refine", action="store_true",
                        help="generate without critic-guided refinement (the generator's images as drawn)")
    parser.add_argument("--refine-json", type=json.loads, default=None,
                        help='override fields of the model folder\'s refine.json, e.g. \'{"sweeps": true, '
                             '"sweep_smoothness": 10}\' (the ablation of joint sweep refinement)')
    parser.add_argument("--refine-single", action="store_true",
                        help="refine 'this feature only' sweeps too, as the coupled ones (never done by default)")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="measure this model folder instead of the bundled one (one --models label: its dataset)")
    args = parser.parse_args(argv)
    if args.cells < 8:
        parser.error("--cells must be at least 8 (issue 13)")
    if args.model_dir is not None and len(args.models) != 1:
        parser.error("--model-dir needs exactly one --models label (which dataset to measure it on)")
    all_sweeps, all_summaries = [], []
    for label in args.models:
        setup = setups()[label]
        if args.model_dir is not None:
            setup.model_dir = args.model_dir
        print(f"\n## {label}: {setup.model_dir.name}\n")
        if setup.skip:
            print(f"skipped: {setup.skip}")
            continue
        start = time.perf_counter()
        cpu = time.process_time()
        sweeps, summary, note = measure_model(setup, n_cells=args.cells, seed=args.seed, pose=not args.no_pose,
                                             refine=not args.no_refine, refine_fields=args.refine_json,
                                             refine_single=args.refine_single)
        note += f"; {time.process_time() - cpu:.0f} s CPU (this process)"
        print(note + f"; {time.perf_counter() - start:.0f} s\n")
        print(control.markdown(summary))
        all_sweeps.append(sweeps)
        all_summaries.append(summary)
    if args.out and all_sweeps:
        args.out.mkdir(parents=True, exist_ok=True)
        pd.concat(all_sweeps).to_csv(args.out / "control-sweeps.csv", index=False)
        pd.concat(all_summaries).to_csv(args.out / "control-summary.csv", index=False)
        print(f"\nwrote {args.out / 'control-sweeps.csv'} and {args.out / 'control-summary.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

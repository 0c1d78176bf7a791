"""Does a generator obey its input? The three figures of the generator ablation.

    python -m cp2image.evaluation.obedience --model RUN/model --data DS [--cells 8] [--split val,test]
                                            [--out DIR] [--no-pose]

Images come from `sweep_feature` and plain `CP2Image.generate`, as the app's: only the
orientation sweep turns cells to the requested nucleus angle (pose control, for models
with that input); ``--no-pose`` scores the raw generator in the sweeps too.

1. **Control** (issue 13's table): the control features swept ±2 SD on held-out DMSO
   cells, coupled and single mode, measured back (`cp2image.analysis.control`);
   median slope and ρ per feature.
2. **Features preserved**: held-out cells (val + test, or the `--split` named) generated from their own
   profiles and measured; Pearson r per feature between the stored measurements of
   the original crops and the generated ones; fraction of features with r > 0.5.
   Angular features (orientation) are correlated on their period (circular r).
3. **Held-out pixel MSE** (images / 255) on the same cells.

Every ablation arm in docs/generator-ablation.md is scored by this one function on
the same cells, so arms differ only in the model.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HELD_OUT = ("val", "test")


@dataclass
class ObedienceReport:
    control: pd.DataFrame  # control_summary: feature, mode, median_slope, median_rho, ...
    correlation: pd.DataFrame  # feature, pearson_r
    fraction_r_above_half: float
    median_r: float
    pixel_mse: float
    n_heldout: int
    seconds: float

    def summary(self) -> dict:
        coupled = self.control[self.control["mode"] == "coupled"].set_index("feature")
        single = self.control[self.control["mode"] == "single"].set_index("feature")
        return {
            "fraction_r_above_half": round(self.fraction_r_above_half, 4),
            "median_r": round(self.median_r, 4),
            "heldout_pixel_mse": round(self.pixel_mse, 5),
            "n_heldout": self.n_heldout,
            "coupled_slope": {f: round(float(v), 3) for f, v in coupled["median_slope"].items()},
            "coupled_rho": {f: round(float(v), 3) for f, v in coupled["median_rho"].items()},
            "single_slope": {f: round(float(v), 3) for f, v in single["median_slope"].items()},
            "seconds": round(self.seconds, 1),
        }


def heldout_and_training(cells: pd.DataFrame, names: list[str],
                         held_out: tuple[str, ...] = HELD_OUT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(held-out cells of the `held_out` splits, training cells), rows with every model feature finite.

    Why a choice of splits: an arm is chosen on val and reported once on test, so the
    test cells must stay unseen while choosing."""
    split = cells["Metadata_Split"].astype(str)
    unknown = sorted(set(held_out) - set(split.unique()))
    if unknown or "train" in held_out:
        raise ValueError(f"held-out splits {list(held_out)}: {unknown or ['train']} "
                         f"{'not in the dataset' if unknown else 'is the training split'} "
                         f"(splits present: {sorted(split.unique())})")
    finite = np.isfinite(cells[names].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)).all(axis=1)
    return cells.loc[finite & split.isin(held_out).to_numpy()], cells.loc[finite & (split == "train").to_numpy()]


def evaluate_obedience(model, dataset, *, n_control_cells: int = 8, seed: int = 0,
                       control_features: tuple[str, ...] | None = None,
                       held_out: tuple[str, ...] = HELD_OUT) -> ObedienceReport:
    """Score `model` on `dataset`'s held-out cells of the `held_out` splits (see module docstring)."""
    from cp2image.analysis import control
    from cp2image.analysis.coupling import fit_coupling
    from cp2image.evaluation.circular import on_period
    from cp2image.evaluation.correlation import feature_correlation
    from cp2image.features import measure

    t0 = time.perf_counter()
    names = list(model.feature_names)
    held, train = heldout_and_training(dataset.cells, names, held_out)
    if len(held) < 3:
        raise ValueError(f"{dataset.path}: fewer than 3 held-out ({'/'.join(held_out)}) cells with all features")
    dmso = held[held["Metadata_Compound"].astype(str) == "DMSO"]
    pick = np.sort(np.random.default_rng(seed).permutation(len(dmso))[:n_control_cells])
    reference = train[train["Metadata_Compound"].astype(str) == "DMSO"]
    coupling = fit_coupling(model, train, source="training split")
    cfg = control.ControlConfig(features=control_features or control.CONTROL_FEATURES)
    sweeps = control.control_sweeps(model, dmso.iloc[pick], reference=reference, coupling=coupling, config=cfg)
    summary = control.control_summary(sweeps)

    rows = dataset.cells.index.get_indexer(held.index)  # image positions, whatever the cells' index labels
    generated = model.generate(held)
    originals = np.asarray(dataset.images[rows])
    mse = float(np.mean((generated.astype(np.float32) / 255 - originals.astype(np.float32) / 255) ** 2))
    measured = measure(generated)
    report = feature_correlation(held.reset_index(drop=True), measured, features=names)
    table = on_period(report.table[["feature", "pearson_r"]], report.real, report.generated)
    r = table["pearson_r"].to_numpy(dtype=np.float64)
    r = r[np.isfinite(r)]
    return ObedienceReport(control=summary, correlation=table,
                           fraction_r_above_half=float(np.mean(r > 0.5)), median_r=float(np.median(r)),
                           pixel_mse=mse, n_heldout=len(rows), seconds=time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--data", required=True, help="dataset with train/val/test splits")
    parser.add_argument("--cells", type=int, default=8, help="held-out DMSO cells swept per feature")
    parser.add_argument("--split", default=",".join(HELD_OUT),
                        help="held-out split(s), joined by commas (default: val,test); e.g. val while choosing")
    parser.add_argument("--out", help="folder for control.csv, correlation.csv, summary.json")
    parser.add_argument("--no-pose", action="store_true",
                        help="score the raw generator (no turn in the orientation sweep)")
    args = parser.parse_args(argv)

    from cp2image.analysis.control import markdown
    from cp2image.data.dataset import open_dataset
    from cp2image.models import CP2Image

    model = CP2Image.from_pretrained(args.model)
    model.pose_control = not args.no_pose
    splits = tuple(s.strip() for s in args.split.split(",") if s.strip())
    report = evaluate_obedience(model, open_dataset(args.data), n_control_cells=args.cells, held_out=splits)
    print(markdown(report.control))
    print(f"features with r > 0.5: {100 * report.fraction_r_above_half:.1f} % (median r {report.median_r:.3f}); "
          f"held-out pixel MSE {report.pixel_mse:.5f} on {report.n_heldout} cells; {report.seconds:.0f} s")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report.control.to_csv(out / "control.csv", index=False)
        report.correlation.to_csv(out / "correlation.csv", index=False)
        (out / "summary.json").write_text(json.dumps(report.summary(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

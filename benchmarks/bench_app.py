"""App responsiveness: server time of each page's main interaction, and cold start.

    python benchmarks/bench_app.py [--quick]

Each interaction is timed as one `AppTest.run()` (the page script run the server does
for that click, plus AppTest's small overhead, so the figures are upper bounds), with
inputs changed every repeat so that no cached result is reused: a new feature to
sweep, a new point on the PCA line, a new step size, a new feature's scatter, a new
upload. Cold start is a fresh Python process importing what Home needs, loading the weights
and dataset, and rendering Home (model and dataset caches empty; Home evaluates the weights in
NumPy, `cp2image.models.numpy_generator`, so torch is not imported; the bundled dataset's
one-off unpack into the user cache already done). Uses the bundled assets when they
exist, else the tests' tiny fixture assets (said in the output).

Targets (issue 8): every interaction ≤ 300 ms server time, cold start < 10 s.
`measure_interactions` is also called by benchmarks/run.py.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
HOME = REPO_ROOT / "app" / "Home.py"
TESTS_APP = REPO_ROOT / "tests" / "app"
TARGET_S = 0.300
COLD_TARGET_S = 10.0

COLD_START_SCRIPT = f"""
import time; t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(HOME)!r}, default_timeout=120); at.run()
assert not at.exception, [e.value for e in at.exception]
print(time.perf_counter() - t0)
"""


def _assets() -> tuple[Path, str]:
    """The assets folder to measure on, and a note saying which."""
    from cp2image.assets import assets_dir, bundled_dataset_dir, bundled_model_dir

    has_model = (bundled_model_dir() / "model.safetensors").exists() or os.environ.get("CP2IMAGE_MODEL")
    if (bundled_dataset_dir() / "dataset.json").exists() and has_model:
        return assets_dir(), "bundled dataset, model " + (os.environ.get("CP2IMAGE_MODEL") or "bundled")
    sys.path.insert(0, str(TESTS_APP))
    from app_fixture_assets import make_assets

    root = Path(tempfile.mkdtemp(prefix="bench-app-assets-"))
    return make_assets(root), "tiny fixture assets (bundled assets absent)"


CPU_TIMES: dict[int, list[float]] = {}  # id(wall list) → CPU seconds of the same runs


def _timed(at: Any, change: Callable[[Any, int], None], repeats: int) -> list[float]:
    """Wall seconds of each run; the process CPU seconds of the same runs go to CPU_TIMES.

    CPU time (all threads of this process) is what the server spends on the interaction
    whatever else the machine is doing; on a busy shared machine wall time also counts
    waiting for a core. With torch's two intra-op threads CPU time can exceed wall time.
    """
    seconds, cpu = [], []
    for i in range(repeats):
        change(at, i)
        start, start_cpu = time.perf_counter(), time.process_time()
        at.run()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if at.exception:
            raise RuntimeError(f"page raised: {[e.message for e in at.exception]}")
    CPU_TIMES[id(seconds)] = cpu
    return seconds


def _click(x: float, y: float, t: float, curve: int) -> dict:
    point = {"curve_number": curve, "point_number": 0, "point_index": 0, "x": x, "y": y, "customdata": t}
    return {"selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}}


def _interactions(repeats: int) -> dict[str, dict[str, Any]]:
    import numpy as np
    from streamlit.testing.v1 import AppTest

    from cp2image.data.dataset import open_dataset
    from cp2image.assets import bundled_dataset_dir
    from cp2image.models.hub import load_model

    model = load_model(None).model
    cells = open_dataset(bundled_dataset_dir()).cells
    features = list(model.feature_names)
    out: dict[str, dict[str, Any]] = {}

    def page(name: str | None) -> Any:
        at = AppTest.from_file(str(HOME), default_timeout=120)
        at.run()
        if name:
            at.switch_page(f"../pages/{name}.py")
            at.run()
        if at.exception:
            raise RuntimeError(f"{name} raised: {[e.message for e in at.exception]}")
        return at

    at = page(None)
    out["Home"] = {"seconds": _timed(at, lambda a, i: None, repeats), "action": "rerun of Home (model, dataset cached)"}

    at = page("feature_perturbation")
    sweepable = [f for f in features if f != at.selectbox(key="pert_feature").value]
    out["Feature perturbation"] = {
        "seconds": _timed(at, lambda a, i: a.selectbox(key="pert_feature").set_value(sweepable[i % len(sweepable)]), repeats),
        "action": "new feature: 9-image sweep + measure back + strip + chart",
    }

    at = page("pca_explorer")
    from cp2image.analysis.trajectory import CompoundTrajectory  # same fit as the page, for click coordinates

    compound = at.selectbox(key="pca_compound").value
    end = at.selectbox(key="pca_end").value
    trajectory = CompoundTrajectory.fit(cells, compound=compound, features=features)
    line = trajectory.line(n_points=41, end_concentration=end)
    n_traces = trajectory.scores["group"].nunique() + 2  # groups, means, line (as charts.pca_scatter draws)
    ts = np.linspace(0.1, 0.9, max(repeats, 2))

    def click(a: Any, i: int) -> None:
        k = int(round(ts[i % len(ts)] * 40))
        a.session_state["pca_chart"] = _click(float(line["PC1"][k]), float(line["PC2"][k]), float(line["t"][k]),
                                              n_traces - 1)

    out["PCA explorer"] = {"seconds": _timed(at, click, repeats),
                           "action": "click on the red line: profile → generate → beside real cells"}

    at = page("moa_interpolation")
    dims = [d for d in range(10, 205, 5) if d != at.slider(key="moa_dims").value]
    targets = len(at.multiselect(key="moa_targets").value)
    out["MoA interpolation"] = {
        "seconds": _timed(at, lambda a, i: a.slider(key="moa_dims").set_value(dims[i % len(dims)]), repeats),
        "action": f"new step size: {targets} MoA strips with images and cosines",
    }

    at = page("correlation_report")
    if any(box.key == "corr_feature" for box in at.selectbox):
        from cp2image.analysis.feature_labels import labelled  # the page's format_func: options are shown labelled

        raw_by_label = {labelled(f): f for f in features}
        chosen = at.selectbox(key="corr_feature").value
        names = [raw_by_label[o] for o in at.selectbox(key="corr_feature").options if raw_by_label.get(o, chosen) != chosen]
        change, action = (lambda a, i: a.selectbox(key="corr_feature").set_value(names[i % len(names)]),
                          "search a feature: its real-vs-generated scatter")
    else:  # an evaluation without per-cell pairs: the threshold is the page's interaction
        thresholds = [round(0.05 * k, 2) for k in range(1, 20) if round(0.05 * k, 2) != 0.5]
        change, action = (lambda a, i: a.slider(key="corr_threshold").set_value(thresholds[i % len(thresholds)]),
                          "new threshold: histogram, metrics, rankings (no pairs.parquet)")
    out["Correlation report"] = {"seconds": _timed(at, change, repeats), "action": action}

    def upload_rows(n_rows: int) -> Callable[[Any, int], None]:
        def upload(a: Any, i: int) -> None:
            start = (i * n_rows) % max(len(cells) - n_rows, 1)
            data = cells.iloc[start:start + n_rows][["Metadata_Compound", *features]].to_csv(index=False).encode()
            a.file_uploader(key="gen_upload").set_value((f"bench{n_rows}_{i}.csv", data, "text/csv"))
        return upload

    at = page("generate_profiles")
    out["Generate from your profiles"] = {"seconds": _timed(at, upload_rows(24), repeats),
                                          "action": "upload a 24-row CSV (one gallery page): check + generate + gallery"}
    out["Generate from your profiles, 100 rows"] = {"seconds": _timed(at, upload_rows(100), repeats),
                                                    "action": "upload a 100-row CSV: check + generate 100 + gallery of 24"}

    at = page("model_card")
    out["Model card"] = {"seconds": _timed(at, lambda a, i: None, repeats), "action": "rerun of the card"}
    return out


def _cold_start(repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of a new process that renders Home."""
    import resource

    seconds, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", COLD_START_SCRIPT], cwd=REPO_ROOT, env=os.environ.copy(),
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"cold start failed: {done.stderr[-2000:]}")
        seconds.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return seconds, cpu


def measure_interactions(*, quick: bool = False, repeats: int | None = None) -> dict[str, dict[str, Any]]:
    """{page: {"seconds": [...], "action": str}} plus "cold start"; environment restored afterwards.

    Honours CP2IMAGE_MODEL (e.g. to time another bundled model); unset → the bundled weights.
    """
    repeats = repeats or (3 if quick else 7)
    saved = {k: os.environ.get(k) for k in ("CP2IMAGE_ASSETS", "HF_HUB_OFFLINE", "CP2IMAGE_MODEL")}
    try:
        root, note = _assets()
        os.environ["CP2IMAGE_ASSETS"] = str(root)
        os.environ["HF_HUB_OFFLINE"] = "1"
        results = _interactions(repeats)
        for entry in results.values():
            entry["cpu_seconds"] = CPU_TIMES.get(id(entry["seconds"]))
        wall, cpu = _cold_start(1 if quick else 3)
        results["cold start"] = {"seconds": wall, "cpu_seconds": cpu,
                                 "action": "new process: imports + dataset + Home (its example from the weights "
                                           "in NumPy: no torch)"}
        for entry in results.values():
            entry["action"] = f"{entry['action']} [{note}]"
        return results
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


FIRST_VISIT_TARGET_S = 3.0  # issue 15: every page's first visit after Home
HOME_DRAWN_TARGET_S = 4.0  # issue 15: Home fully drawn after `streamlit run`


FIRST_USE_READ_HOME_S = 10.0  # the runner's rows: a user reads Home for 10 s before the first click


def first_visit_rows(*, read_home_s: float = 0.0) -> list[str]:
    """Markdown rows: each page's first visit on a fresh server, in a real browser (tests/app/first_visit.py)."""
    sys.path.insert(0, str(TESTS_APP))
    from first_visit import PAGES, measure

    visits = measure(list(PAGES), read_home_s=read_home_s)
    rows = ["| page | Home painted / drawn (wall, server CPU) | first visit (wall / server CPU) | warm visit | "
            f"target | met (wall / CPU) |", "|---|---|---|---|---|---|"]
    for v in visits:
        met = "/".join("yes" if x <= FIRST_VISIT_TARGET_S else "NO" for x in (v.first_visit_s, v.first_cpu_s))
        rows.append(f"| {v.page} | {v.home_painted_s:.1f} s ({v.home_painted_cpu_s:.1f}) / {v.home_drawn_s:.1f} s "
                    f"({v.home_cpu_s:.1f}) | {v.first_visit_s:.1f} s / {v.first_cpu_s:.1f} s | {v.warm_visit_s:.1f} s | "
                    f"first ≤ {FIRST_VISIT_TARGET_S:g} s, Home ≤ {HOME_DRAWN_TARGET_S:g} s | {met} |")
    return rows


def first_use_names(ctx: Any = None) -> list[str]:
    """The runner's first-use rows (issue 15 item 7), produced by `first_use_run`."""
    sys.path.insert(0, str(TESTS_APP))
    from first_visit import PAGES

    return ["Home drawn after streamlit run", "Home painted after streamlit run",
            *(f"first visit after Home: {title}" for title in PAGES.values())]


def first_use_run(ctx: Any = None, *, section: str = "App sessions") -> list[Row]:
    """Home and every page's first visit as a user sees them: one fresh server per page, headless Chromium
    (tests/app/first_visit.py), 10 s on Home before the click. Wall seconds (what the targets are about),
    with the server's CPU seconds and the load average in `extra` and the note."""
    sys.path.insert(0, str(TESTS_APP))
    from first_visit import PAGES, measure

    load = os.getloadavg()[0]
    visits = measure(list(PAGES), read_home_s=FIRST_USE_READ_HOME_S)
    note = (f"fresh server per page, {FIRST_USE_READ_HOME_S:g} s on Home; wall s (server CPU s in extra); "
            f"1-min load {load:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    names = first_use_names(ctx)
    rows = []
    for name, wall, cpu, target in ((names[0], [v.home_drawn_s for v in visits], [v.home_cpu_s for v in visits],
                                     HOME_DRAWN_TARGET_S),
                                    (names[1], [v.home_painted_s for v in visits],
                                     [v.home_painted_cpu_s for v in visits], None)):
        median = float(np.median(wall))
        rows.append(Row(section, name, unit="s", median=median, min=min(wall), note=f"n = {len(wall)}; {note}",
                        target=f"≤ {target:g} s" if target else "", met=median <= target if target else None,
                        extra={"cpu_s_median": float(np.median(cpu)), "wall_s": wall, "cpu_s": cpu}))
    for name, v in zip(names[2:], visits):
        rows.append(Row(section, name, unit="s", median=v.first_visit_s, min=v.first_visit_s, note=note,
                        target=f"≤ {FIRST_VISIT_TARGET_S:g} s", met=v.first_visit_s <= FIRST_VISIT_TARGET_S,
                        extra={"cpu_s": v.first_cpu_s, "warm_visit_s": v.warm_visit_s}))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats, one cold start")
    parser.add_argument("--first-visit", action="store_true",
                        help="instead: each page's first visit on a fresh server in headless Chromium (~2 min)")
    parser.add_argument("--read-home", type=float, default=0.0, help="with --first-visit: seconds on Home first")
    args = parser.parse_args()
    if args.first_visit:
        load = os.getloadavg()[0]
        print(f"CPU: {os.cpu_count()} cores; 1-min load average {load:.1f}; {args.read_home:g} s on Home before "
              "each click; fresh server per page.\n")
        print("\n".join(first_visit_rows(read_home_s=args.read_home)))
        return 0
    import logging

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    load_before = os.getloadavg()[0]
    results = measure_interactions(quick=args.quick)
    print(f"CPU: {os.cpu_count()} cores; 1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
          "(other jobs share this machine, so these are upper bounds).\n")
    print("| page | interaction | wall median | wall max | CPU median | target | met (wall / CPU) |")
    print("|---|---|---|---|---|---|---|")
    for page, entry in results.items():
        seconds = entry["seconds"]
        cold = page == "cold start"
        target = COLD_TARGET_S if cold else TARGET_S
        median, worst = statistics.median(seconds), max(seconds)
        cpu = entry.get("cpu_seconds")
        cpu_median = statistics.median(cpu) if cpu else None
        fmt = (lambda v: f"{v:.2f} s") if cold else (lambda v: f"{1e3 * v:.0f} ms")
        met = "yes" if median <= target else "NO"
        if cpu_median is not None:
            met += " / " + ("yes" if cpu_median <= target else "NO")
        print(f"| {page} | {entry['action']} | {fmt(median)} | {fmt(worst)} | "
              f"{fmt(cpu_median) if cpu_median is not None else '–'} | {'<' if cold else '≤'} {fmt(target)} | {met} |")
    return 0


# ----------------------------------------------------------------------------- runner section: app (benchmarks/run.py)

import numpy as np  # noqa: E402

from runner_support import Row  # noqa: E402


APP_PAGES = ("Home", "Feature perturbation", "PCA explorer", "MoA interpolation",
             "Correlation report", "Generate from your profiles", "Model card")


def app_names(ctx) -> list[str]:
    return [f"server time: {p}" for p in APP_PAGES] + ["cold start"]


def app_run(ctx) -> list[Row]:
    results = measure_interactions(quick=ctx.quick, repeats=ctx.repeats)
    rows = []
    for page in APP_PAGES:
        res = results[page]
        seconds = res["seconds"]
        median = float(np.median(seconds))
        rows.append(Row("App", f"server time: {page}", unit="ms", median=median * 1e3,
                        min=min(seconds) * 1e3, target="≤ 300 ms", met=median <= 0.300,
                        note=res.get("action", "")))
    cold = results["cold start"]
    rows.append(Row("App", "cold start", unit="s", median=float(np.median(cold["seconds"])),
                    min=min(cold["seconds"]), target="< 10 s",
                    met=float(np.median(cold["seconds"])) < 10, note=cold.get("action", "")))
    return rows


if __name__ == "__main__":
    sys.exit(main())

"""Memory of the hosted app with N concurrent browser sessions (issue 9, hosted demo), and first use.

Starts one `streamlit run app/Home.py` server (the same launcher as the real-browser
test), opens N headless-Chromium tabs on the Feature perturbation page (each tab is
its own Streamlit session and runs a 9-image perturbation), and samples the server's
resident memory: before any session, after the first, peak while all N run at once,
and after all N settle. The model is shared through `st.cache_resource`, so each extra
session should cost little.

The runner's section also has the first-use rows (issue 15 item 7, `bench_app.first_use_run`):
Home drawn and painted after `streamlit run`, and each page's first visit after 10 s on Home,
one fresh server per page in headless Chromium.

Run: `.venv/bin/python benchmarks/app_sessions.py [--sessions 20] [--json PATH]`.
Uses the bundled assets when present, else the app tests' fixture assets (and says so).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "app"))  # the app tests' server launcher and fixtures
sys.path.insert(0, str(REPO_ROOT))

PAGE = "feature_perturbation"
IMAGES_READY_JS = "n => document.querySelectorAll('[data-testid=\"stImage\"] img, [data-testid=\"stImageContainer\"] img').length >= n"


def _children_named(fragment: str) -> list[int]:
    """PIDs of this process's children whose command line contains `fragment`."""
    me, pids = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and fragment in cmd:
            pids.append(int(entry.name))
    return pids


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for {pid}")


class Sampler(threading.Thread):
    """Samples a process's RSS every `interval` seconds; `.peak` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self._stop_flag = pid, interval, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, RuntimeError):
                return
            time.sleep(self.interval)

    def stop(self) -> float:
        self._stop_flag.set()
        self.join(timeout=2)
        return self.peak


def _assets() -> tuple[Path | None, str]:
    from cp2image.assets import bundled_dataset_dir, bundled_model_dir

    if (bundled_model_dir() / "model.safetensors").exists() and (bundled_dataset_dir() / "dataset.json").exists():
        return None, "bundled assets"
    from app_fixture_assets import make_assets

    return make_assets(Path(tempfile.mkdtemp(prefix="cp2image-sessions-"))), "app-test fixture assets (bundled absent)"


def measure(sessions: int, *, timeout_s: float = 300.0) -> dict:
    from playwright.sync_api import sync_playwright

    from app_harness import CHROMIUM, CHROMIUM_FLAGS, serve_app

    assets, note = _assets()
    with tempfile.TemporaryDirectory() as tmp, serve_app(assets, log_path=Path(tmp) / "streamlit.log") as url:
        pids = _children_named("streamlit")
        if len(pids) != 1:
            raise RuntimeError(f"expected one streamlit server process, found {pids}")
        server = pids[0]
        out = {"sessions": sessions, "assets": note, "rss_idle_mb": rss_mb(server)}
        sampler = Sampler(server)
        sampler.start()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
            try:
                contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(sessions)]
                pages = [c.new_page() for c in contexts]
                start = time.perf_counter()
                pages[0].goto(f"{url}/{PAGE}", wait_until="domcontentloaded")
                pages[0].wait_for_function(IMAGES_READY_JS, arg=9, timeout=timeout_s * 1000)
                out["first_session_s"] = time.perf_counter() - start
                time.sleep(1.0)
                out["rss_one_session_mb"] = rss_mb(server)
                start = time.perf_counter()
                for page in pages[1:]:  # all remaining sessions start at once
                    page.goto(f"{url}/{PAGE}", wait_until="commit")
                for page in pages[1:]:
                    page.wait_for_function(IMAGES_READY_JS, arg=9, timeout=timeout_s * 1000)
                out["all_sessions_s"] = time.perf_counter() - start
                time.sleep(2.0)
                out["rss_all_sessions_mb"] = rss_mb(server)
                out["rss_peak_mb"] = sampler.stop()
            finally:
                browser.close()
    extra = max(sessions - 1, 1)
    out["rss_per_extra_session_mb"] = (out["rss_all_sessions_mb"] - out["rss_one_session_mb"]) / extra
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    res = measure(args.sessions)
    print(f"# App memory, {res['sessions']} concurrent browser sessions ({res['assets']})\n")
    print("| measure | value |\n|---|---:|")
    for key, label in [("rss_idle_mb", "server RSS, no session (MB)"),
                       ("rss_one_session_mb", "server RSS, 1 session (MB)"),
                       ("rss_all_sessions_mb", f"server RSS, {res['sessions']} sessions settled (MB)"),
                       ("rss_peak_mb", f"server RSS, peak while {res['sessions']} sessions run (MB)"),
                       ("rss_per_extra_session_mb", "RSS per extra session (MB)"),
                       ("first_session_s", "first session: page with 9 images (s)"),
                       ("all_sessions_s", f"{res['sessions'] - 1} more sessions at once: all pages done (s)")]:
        print(f"| {label} | {res[key]:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


# ----------------------------------------------------------------------------- runner section: sessions (benchmarks/run.py)

from runner_support import Row  # noqa: E402


SESSIONS = 20


def sessions_names(ctx) -> list[str]:
    from bench_app import first_use_names

    return ["server RSS, no session", "server RSS, 1 session", f"server RSS, {SESSIONS} sessions",
            f"server RSS peak, {SESSIONS} sessions at once", "RSS per extra session", *first_use_names(ctx)]


def sessions_run(ctx) -> list[Row]:
    """Real server + headless Chromium tabs (benchmarks/app_sessions.py)."""
    res = measure(SESSIONS)
    note = f"{res['assets']}; each session runs a 9-image perturbation"
    values = [res["rss_idle_mb"], res["rss_one_session_mb"], res["rss_all_sessions_mb"], res["rss_peak_mb"],
              res["rss_per_extra_session_mb"]]
    rows = [Row("App sessions", name, unit="MB", median=v, min=v, note=note)
            for name, v in zip(sessions_names(ctx), values)]
    rows[-1].ratio = res["rss_per_extra_session_mb"] / res["rss_one_session_mb"]
    rows[-1].reference = "of the 1-session RSS"
    rows[-1].target, rows[-1].met = "model shared (≪ 1-session RSS)", rows[-1].ratio < 0.1
    from bench_app import first_use_run  # Home drawn and each page's first visit, fresh servers (issue 15 item 7)

    return rows + first_use_run(ctx, section="App sessions")


if __name__ == "__main__":
    raise SystemExit(main())

"""First-use timings of the served app as a user sees them, in headless Chromium (not a test).

    .venv/bin/python tests/app/first_visit.py [--assets DIR] [--model SPEC] [--shots DIR] [--json PATH]

For each page this starts a *fresh* `streamlit run app/Home.py` (empty model, dataset and
page caches, as after a new install or a server restart), then measures:

- **Home fully drawn**: seconds from launching the server process until Home is drawn in
  the browser: the script has stopped running, every image has loaded, every Plotly and
  Vega-Lite (Altair) chart and every visible data grid has rendered and the page has stopped
  changing. The browser tab is already open (as a
  user's is) and is sent to the app as soon as the server's health endpoint answers
  (**server up**, polled every 50 ms);
- **Home painted**: seconds from launching the server until Home first shows its title and a
  loaded image in the main area (the example's dataset crop), the moment a user can start
  reading; the model may still be loading;
- **first visit**: seconds from clicking the page's link in the sidebar (as a user does
  right after Home) until that page is fully drawn in the same sense;
- **warm visit**: Home again, then the same page again (caches warm, new script run).

`--read-home S` waits S seconds on Home before the click (a user reading Home; the
server warms the other pages meanwhile); 0 clicks as soon as Home is drawn.

Beside wall time, each figure has the server process's CPU seconds over the same span
(user + system, from /proc, sampled when the page last changed): on a shared, loaded
machine wall time also counts waiting for a core, CPU time does not. With `--read-home 0`
the first visit's CPU includes the background warm-up running at the same time.

A page is "drawn" at the moment the page last changed before it stayed still for
`STILL_S` seconds, so the figures do not include the waiting needed to be sure.
`benchmarks/bench_app.py --first-visit` prints these as table rows.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_harness import (CHROMIUM, CHROMIUM_FLAGS, REPO_ROOT, _free_port, app_env, stop_server as _stop,  # noqa: E402
                         streamlit_command)

STILL_S = 1.5  # the page must stay unchanged this long to count as drawn
POLL_S = 0.1
PAGES = {  # url path → page title in the sidebar
    "feature_perturbation": "Feature perturbation",
    "pca_explorer": "PCA explorer",
    "moa_interpolation": "MoA interpolation",
    "correlation_report": "Correlation report",
    "generate_profiles": "Generate from your profiles",
    "model_card": "Model card",
}
# Running: Streamlit's status widget is present while a script runs.
STATE_JS = """() => {
  if (!document.body) return {busy: true, html: 0, title: false, painted: false};  // the app's document is loading
  const running = !!document.querySelector('[data-testid="stStatusWidget"]') ||
                  [...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Stop');
  const images = [...document.images].every(i => i.complete);
  const plots = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
  const plotted = plots.every(p => { const g = p.querySelector('.js-plotly-plot'); return g && g._fullData; }) &&
    [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].every(v => v.querySelector('.marks')) &&
    [...document.querySelectorAll('[data-testid="stDataFrame"]')].every(d => !d.checkVisibility() || d.querySelector('canvas'));
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const skeleton = !!document.querySelector('[data-testid="stSkeleton"]');
  const shown = [...main.querySelectorAll('img')].some(i => i.complete && i.naturalWidth > 0);
  return {busy: running || !images || !plotted || skeleton, html: main.innerHTML.length,
          title: !!document.querySelector('h1'), painted: !!main.querySelector('h1') && shown};
}"""


@dataclass
class Visit:
    page: str
    home_drawn_s: float  # server launch → Home drawn
    first_visit_s: float  # sidebar click → page drawn, caches cold
    warm_visit_s: float  # same again after visiting Home, caches warm
    home_cpu_s: float = 0.0  # server CPU seconds over the same spans
    first_cpu_s: float = 0.0
    warm_cpu_s: float = 0.0
    read_home_s: float = 0.0  # seconds spent on Home before the click
    home_painted_s: float = 0.0  # server launch → Home's title and first image shown
    home_painted_cpu_s: float = 0.0
    server_up_s: float = 0.0  # server launch → its health endpoint answers (the browser is sent there then)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_drawn(page, *, since: float, timeout_s: float = 180.0, pid: int | None = None) -> float:
    """Seconds from `since` (a time.monotonic() value) until the page was last changed before staying still.

    With `pid`, the server's CPU seconds at that same moment are kept in `wait_drawn.cpu_at_draw`
    (sampled at every change, so work the server does while the page stays still is not counted).
    The first moment a title and a loaded image were shown is kept in `wait_drawn.painted_s`
    (seconds from `since`) and `wait_drawn.cpu_at_paint`.
    """
    deadline = time.monotonic() + timeout_s
    previous, changed_at = None, time.monotonic()
    cpu_at_change = cpu_seconds(pid) if pid else 0.0
    wait_drawn.painted_s, wait_drawn.cpu_at_paint = float("nan"), float("nan")
    while time.monotonic() < deadline:
        state = page.evaluate(STATE_JS)
        now = time.monotonic()
        if state["painted"] and wait_drawn.painted_s != wait_drawn.painted_s:  # first time (NaN until then)
            wait_drawn.painted_s = now - since
            wait_drawn.cpu_at_paint = cpu_seconds(pid) if pid else 0.0
        key = (state["busy"], state["html"], state["title"])
        if key != previous:
            previous, changed_at = key, now
            cpu_at_change = cpu_seconds(pid) if pid else 0.0
        elif not state["busy"] and state["title"] and now - changed_at >= STILL_S:
            wait_drawn.cpu_at_draw = cpu_at_change
            return changed_at - since
        time.sleep(POLL_S)
    raise TimeoutError("the page did not finish drawing")


wait_drawn.cpu_at_draw = 0.0
wait_drawn.painted_s = wait_drawn.cpu_at_paint = float("nan")


def _launch(assets: Path | None, model: str | None, log) -> tuple[subprocess.Popen, str, float]:
    port = _free_port()
    started = time.monotonic()
    process = subprocess.Popen(streamlit_command(port), cwd=REPO_ROOT, env=app_env(assets, model), stdout=log,
                               stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}", started


def _wait_up(url: str, process: subprocess.Popen, timeout_s: float = 90.0) -> float:
    """time.monotonic() when the server's health endpoint first answers (polled every 50 ms)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return time.monotonic()
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout_s:.0f} s")


def _open_from_sidebar(page, slug: str) -> None:
    title = PAGES.get(slug, "Home")
    page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title).first.click()


def measure(pages: list[str], *, assets: Path | None = None, model: str | None = None, width: int = 1280,
            shots: Path | None = None, log_dir: Path | None = None, read_home_s: float = 0.0) -> list[Visit]:
    """One fresh server per page: Home drawn, then the page's first and warm visits."""
    from playwright.sync_api import sync_playwright

    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="first-visit-"))
    visits = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            for slug in pages:
                # The tab is opened before the server starts: a user's browser is already open, and opening a
                # headless tab took 0.5-0.7 s at load 8, which is the harness's time, not the app's.
                page = browser.new_page(viewport={"width": width, "height": 900})
                with open(log_dir / f"{slug}.log", "w") as log:
                    process, url, started = _launch(assets, model, log)
                    try:
                        up = _wait_up(url, process) - started
                        page.goto(url, wait_until="commit")
                        pid = process.pid
                        home = wait_drawn(page, since=started, pid=pid)
                        home_cpu = wait_drawn.cpu_at_draw
                        painted, painted_cpu = wait_drawn.painted_s, wait_drawn.cpu_at_paint
                        if shots is not None and slug == pages[0]:
                            page.screenshot(path=str(shots / "home.png"), full_page=True)
                        time.sleep(read_home_s)
                        cpu0, clicked = cpu_seconds(pid), time.monotonic()
                        _open_from_sidebar(page, slug)
                        first = wait_drawn(page, since=clicked, pid=pid)
                        first_cpu = wait_drawn.cpu_at_draw - cpu0
                        if shots is not None:
                            page.screenshot(path=str(shots / f"{slug}.png"), full_page=True)
                        _open_from_sidebar(page, "home")
                        wait_drawn(page, since=time.monotonic())
                        time.sleep(read_home_s)
                        cpu0, clicked = cpu_seconds(pid), time.monotonic()
                        _open_from_sidebar(page, slug)
                        warm = wait_drawn(page, since=clicked, pid=pid)
                        warm_cpu = wait_drawn.cpu_at_draw - cpu0
                    finally:
                        _stop(process)
                        page.close()
                visits.append(Visit(PAGES.get(slug, slug), home, first, warm, home_cpu, first_cpu, warm_cpu,
                                    read_home_s, painted, painted_cpu, up))
                print(f"{slug}: server up {up:.2f} s, Home painted {painted:.2f} s ({painted_cpu:.2f} CPU s), drawn {home:.2f} s "
                      f"({home_cpu:.2f} CPU s), first visit {first:.2f} s "
                      f"({first_cpu:.2f} CPU s), warm {warm:.2f} s ({warm_cpu:.2f} CPU s)", flush=True)
        finally:
            browser.close()
    return visits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=None, help="serve this assets folder (default: bundled)")
    parser.add_argument("--model", default=None, help="the server's CP2IMAGE_MODEL (default: bundled weights)")
    parser.add_argument("--pages", nargs="*", default=list(PAGES), choices=list(PAGES))
    parser.add_argument("--width", type=int, default=1280, help="browser viewport width in px")
    parser.add_argument("--shots", type=Path, default=None, help="save a screenshot of each first visit here")
    parser.add_argument("--json", type=Path, default=None, help="write the timings here")
    parser.add_argument("--read-home", type=float, default=0.0, help="seconds on Home before clicking the page")
    args = parser.parse_args()
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    visits = measure(args.pages, assets=args.assets, model=args.model, width=args.width, shots=args.shots,
                     read_home_s=args.read_home)
    if args.json:
        args.json.write_text(json.dumps([asdict(v) for v in visits], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

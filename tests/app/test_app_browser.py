"""Real-browser test: the served app in headless Chromium, a click on the PCA chart generates a cell.

Starts `streamlit run app/Home.py` on a free loopback port (fixture assets via
CP2IMAGE_ASSETS, offline), drives Debian's /usr/bin/chromium with Playwright, clicks a
point of the red DMSO → 3 µM line where Plotly draws it, and waits for the generated
image. The screenshot is kept in tests/artifacts/ (git-ignored). Skips cleanly when
chromium or playwright is missing; CI installs chromium with apt (.ci/run).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app_harness import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not become healthy at {url} within {timeout:.0f} s")


@pytest.fixture
def served_app(app_assets, tmp_path):
    port = _free_port()
    env = dict(os.environ, CP2IMAGE_ASSETS=str(app_assets), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("CP2IMAGE_MODEL", None)
    log = open(tmp_path / "streamlit.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# Page coordinates of the middle point of the red line, from Plotly's own axis mapping.
LINE_POINT_JS = """
() => {
  const isLine = t => (t.name || '').startsWith('DMSO →');
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(g => g._fullData && g._fullData.some(isLine));
  if (!gd) return null;
  const trace = gd._fullData.find(isLine);  // decoded arrays (gd.data may hold base64 typed arrays)
  const k = Math.floor(trace.x.length / 2);
  const fl = gd._fullLayout, box = gd.getBoundingClientRect();
  return {x: box.left + fl._size.l + fl.xaxis.d2p(trace.x[k]), y: box.top + fl._size.t + fl.yaxis.d2p(trace.y[k]),
          t: trace.customdata[k]};
}
"""


def test_clicking_the_pca_line_in_a_real_browser_shows_a_generated_cell(served_app):
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(f"{served_app}/pca_explorer", wait_until="domcontentloaded")
            page.get_by_text("Click a point on the red line").wait_for(timeout=60_000)
            page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g._fullData)",
                                   timeout=30_000)
            point = page.evaluate(LINE_POINT_JS)
            assert point is not None, "the PCA chart has no red line trace"
            page.mouse.move(point["x"], point["y"])
            page.mouse.click(point["x"], point["y"])
            page.get_by_text("Generated cell").wait_for(timeout=60_000)
            page.get_by_text("on the line").first.wait_for(timeout=10_000)
            generated = page.locator("[data-testid='stImage']").filter(has_text="generated")
            generated.first.wait_for(timeout=10_000)
            page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)",
                                   timeout=20_000)
            page.screenshot(path=str(ARTIFACTS / "browser_pca_click.png"), full_page=True)
            assert generated.count() >= 1
        finally:
            browser.close()

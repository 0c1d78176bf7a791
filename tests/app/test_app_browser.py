"""Real-browser test: the served app in headless Chromium, a click on the PCA chart generates a cell.

Starts `streamlit run app/Home.py` on a free loopback port (fixture assets via
CP2IMAGE_ASSETS, offline), drives Debian's /usr/bin/chromium with Playwright, clicks a
point of the red DMSO → 3 µM line where Plotly draws it, and waits for the generated
image. The screenshot is kept in tests/artifacts/ (git-ignored). Skips cleanly when
chromium or playwright is missing; CI installs chromium with apt (.ci/run).
"""
from __future__ import annotations

import pytest

from app_harness import CHROMIUM, CHROMIUM_FLAGS, LINE_POINT_JS, REPO_ROOT, serve_app

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # ~30 s: server start, browser start, two script runs
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium (apt-get install chromium)"),
]


@pytest.fixture
def served_app(app_assets, tmp_path):
    with serve_app(app_assets, log_path=tmp_path / "streamlit.log") as url:
        yield url


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

"""Feature perturbation in a real browser at 1280 px (issues 13 and 15): what only a browser can check.

Captions under the crops stay on one line, no widget label is cut off, the clip notice is
on the page (not folded into an expander) and the moved-with table fits the window. Served
on the bundled assets, as a user runs it; skipped without chromium/playwright (as
test_app_browser.py).
"""
from __future__ import annotations

from urllib.parse import quote

import pytest

from app_harness import CHROMIUM, CHROMIUM_FLAGS, serve_app
from first_visit import wait_drawn

WIDTH = 1280

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # ~1 min: server start, browser start, one sweep measured back
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium (apt-get install chromium)"),
]

CAPTIONS_JS = """() => [...document.querySelectorAll('[data-testid="stImageCaption"]')]
  .map(e => ({text: e.innerText, height: e.getBoundingClientRect().height}))"""
CUT_LABELS_JS = """() => [...document.querySelectorAll('[data-testid="stWidgetLabel"], [data-testid="stMetricLabel"]')]
  .flatMap(root => [root, ...root.querySelectorAll('*')])
  .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible' && e.clientWidth > 0)
  .map(e => e.innerText.slice(0, 60))"""
ALERTS_JS = """() => [...document.querySelectorAll('[data-testid="stAlert"]')]
  .map(e => ({text: e.innerText, height: e.getBoundingClientRect().height,
              folded: !!e.closest('[data-testid="stExpander"]')}))"""
OFF_WINDOW_JS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).length"""


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    with serve_app(None, log_path=tmp_path_factory.mktemp("browser-perturb") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(served_app):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.requested = []  # every URL the page fetches
        page.on("request", lambda request: page.requested.append(request.url))
        # a ±5 SD cell-area sweep runs past the training cells' range at both ends: steps are clipped
        feature = quote("Cell area (Cells_AreaShape_Area)")
        page.goto(f"{served_app}/feature_perturbation?pert_feature={feature}&pert_span_sd=5", wait_until="commit")
        page.get_by_role("heading").first.wait_for(timeout=120_000)
        wait_drawn(page, since=0.0, timeout_s=240)
        page.get_by_text("Moved with it").wait_for(timeout=120_000)
        yield page
        browser.close()


def test_crop_captions_stay_on_one_line(page):
    captions = page.evaluate(CAPTIONS_JS)
    one_line = captions[0]["height"]  # "simulated cell" under the chosen crop
    strip = captions[1:]
    assert len(strip) == 9 and all("→" in c["text"] for c in strip), captions
    wrapped = [c["text"] for c in strip if c["height"] > 1.5 * one_line]
    assert wrapped == [], f"captions wrap at {WIDTH} px: {wrapped}"


def test_no_label_is_cut_off_and_the_clip_notice_is_in_view(page):
    assert page.evaluate(CUT_LABELS_JS) == []
    clip = [a for a in page.evaluate(ALERTS_JS) if "clipped" in a["text"]]
    assert clip and not clip[0]["folded"] and clip[0]["height"] > 0, clip
    assert page.evaluate(OFF_WINDOW_JS) == 0, "the moved-with table runs off the page"


def test_the_sweep_chart_is_drawn_by_vega_without_loading_plotly(page):
    """The requested-vs-measured chart is Altair: its points are drawn, and Plotly's 4.6 MB front end (1-3 s of a
    first visit in headless Chromium, docs/app-first-use.md) is never fetched on this page."""
    chart = page.locator("[data-testid='stVegaLiteChart']")
    assert chart.count() == 1 and chart.locator(".marks").count() == 1
    assert not [u for u in page.requested if "PlotlyChart" in u]


"""Screenshot every page in headless Chromium for docs/screenshots/ (not a test).

    .venv/bin/python tests/app/take_screenshots.py [--out docs/screenshots] [--fixture-assets] [--width 1280]
    .venv/bin/python tests/app/take_screenshots.py --out docs/screenshots/real --data data/bbbc021-real \\
        --model assets/models/cp2image-bbbc021-real --pages pca_explorer moa_interpolation

Serves the app on a free loopback port (bundled assets by default, offline), opens each
page, does its main interaction (a click on the PCA line, a CSV upload of real profiles)
and saves a full-page PNG per page.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_harness import CHROMIUM, CHROMIUM_FLAGS, LINE_POINT_JS, REPO_ROOT, serve_app  # noqa: E402

IMAGES_LOADED = "() => [...document.images].every(i => i.complete)"
PLOT_READY = "() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g._fullData)"
VEGA_READY = "() => document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] .marks').length >= 2"


RUNNING = "() => [...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Stop')"
CONTENT_HEIGHT = ("() => { const c = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
                  " return c ? c.scrollHeight : document.body.scrollHeight; }")


def _settle(page, *, wait_text: str | None = None, timeout_s: float = 120.0) -> None:
    """Wait for `wait_text`, then until the script is idle, images are loaded and the page stops changing."""
    if wait_text:
        page.get_by_text(wait_text).first.wait_for(timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    previous = None
    while time.monotonic() < deadline:
        time.sleep(1.0)
        state = (page.evaluate(RUNNING), page.evaluate(IMAGES_LOADED), page.evaluate("() => document.body.innerHTML.length"))
        if not state[0] and state[1] and state == previous:
            return
        previous = state
    raise TimeoutError("page did not settle")


def _profiles_csv(path: Path, assets: Path | None) -> int:
    """Up to 20 real profiles (two per compound) from the served dataset, as a user's upload; returns the count."""
    from cp2image.assets import bundled_dataset_dir
    from cp2image.data.dataset import open_dataset

    dataset = open_dataset(assets / "datasets" / "bbbc021-sim" if assets else bundled_dataset_dir())
    cells = dataset.cells.groupby("Metadata_Compound").head(2).head(20)
    cells[["Metadata_Compound", "Metadata_Concentration", *dataset.feature_names]].to_csv(path, index=False)
    return len(cells)


ALL_PAGES = ("home", "feature_perturbation", "pca_explorer", "moa_interpolation", "correlation_report",
             "generate_profiles", "model_card")


def take(out: Path, assets: Path | None, *, model: str | None = None, width: int = 1280,
         pages: tuple[str, ...] = ALL_PAGES) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from first_visit import wait_drawn

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="screens-"))
    upload = work / "my_profiles.csv"
    n_upload = _profiles_csv(upload, assets)
    saved = []
    with serve_app(assets, log_path=work / "streamlit.log", model=model) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": width, "height": 1000})

        def shot(name: str) -> None:
            """Grow the viewport to the page's content (Streamlit scrolls an inner container), then capture."""
            height = int(page.evaluate(CONTENT_HEIGHT)) + 120
            page.set_viewport_size({"width": width, "height": max(900, min(height, 4000))})
            time.sleep(1.0)
            path = out / f"{name}.png"
            page.screenshot(path=str(path))
            saved.append(path)
            page.set_viewport_size({"width": width, "height": 1000})

        def visit(slug: str) -> None:
            page.goto(url if slug == "home" else f"{url}/{slug}", wait_until="commit")
            page.get_by_role("heading").first.wait_for(timeout=180_000)
            wait_drawn(page, since=0.0, timeout_s=240)

        for slug in pages:
            visit(slug)
            if slug == "pca_explorer":  # a click on the red line, a third of the way to the top dose
                page.wait_for_function(PLOT_READY, timeout=60_000)
                point = page.evaluate(LINE_POINT_JS)
                page.mouse.click(point["x"], point["y"])
                _settle(page, wait_text="Generated cell")
            elif slug == "generate_profiles":
                page.locator("input[type=file]").set_input_files(str(upload))
                _settle(page, wait_text=f"Generated {n_upload} image(s)")
            elif slug == "correlation_report":  # the histogram and the feature scatter (Altair)
                page.wait_for_function(VEGA_READY, timeout=60_000)
            shot(slug)
        browser.close()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    parser.add_argument("--fixture-assets", action="store_true", help="serve the tests' tiny assets instead of bundled")
    parser.add_argument("--assets", type=Path, default=None, help="serve this assets folder instead of bundled")
    parser.add_argument("--model", default=None, help="the server's CP2IMAGE_MODEL (default: bundled weights)")
    parser.add_argument("--width", type=int, default=1280, help="browser width in px (a common laptop width)")
    parser.add_argument("--data", type=Path, default=None, help="the server's CP2IMAGE_DATA (default dataset)")
    parser.add_argument("--pages", nargs="*", default=list(ALL_PAGES), choices=list(ALL_PAGES))
    args = parser.parse_args()
    if args.data is not None:
        os.environ["CP2IMAGE_DATA"] = str(args.data.resolve())
    assets = args.assets
    if args.fixture_assets:
        from app_fixture_assets import make_assets

        assets = make_assets(Path(tempfile.mkdtemp(prefix="screens-assets-")))
    for path in take(args.out, assets, model=args.model, width=args.width, pages=tuple(args.pages)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

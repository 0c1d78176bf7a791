"""Screenshots of the app on a real-cell dataset, for docs/screenshots/real-*.png (not a test).

    .venv/bin/python tests/hub/real_screenshots.py --data /work/data/bbbc021-real \
        [--model bundled:cp2image-bbbc021-real] [--out docs/screenshots] [--width 1280]

Serves the app with CP2IMAGE_DATA pointing at the dataset (the sidebar's default), offline,
and in headless Chromium: Home; the PCA explorer on latrunculin B with a click on the red
line; MoA interpolation towards every MoA the dataset has; a feature sweep of a real cell.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "app")]

from app_harness import LINE_POINT_JS  # noqa: E402
from served import CHROMIUM, CHROMIUM_FLAGS, clean_env, serve  # noqa: E402
from take_screenshots import CONTENT_HEIGHT, PLOT_READY, _settle  # noqa: E402

REPO_ROOT = HERE.parents[1]


def take(data: Path, model: str, out: Path, width: int) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from cp2image.data.dataset import open_dataset

    moas = sorted(m for m in open_dataset(data).cells["Metadata_MoA"].astype(str).unique() if m != "DMSO")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="real-screens-"))
    env = clean_env(CP2IMAGE_DATA=str(data), CP2IMAGE_MODEL=model)
    saved: list[Path] = []
    with serve(REPO_ROOT, env, log_path=work / "streamlit.log") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": width, "height": 1000})

        def shot(name: str) -> None:
            height = int(page.evaluate(CONTENT_HEIGHT)) + 120
            page.set_viewport_size({"width": width, "height": max(900, min(height, 6000))})
            time.sleep(1.0)
            path = out / f"real-{name}.png"
            page.screenshot(path=str(path))
            saved.append(path)
            page.set_viewport_size({"width": width, "height": 1000})

        page.goto(url)
        _settle(page, wait_text="How to cite", timeout_s=300)
        shot("home")
        page.goto(f"{url}/pca_explorer?pca_compound={quote('latrunculin B')}")
        _settle(page, wait_text="Click a point on the red line", timeout_s=300)
        page.wait_for_function(PLOT_READY, timeout=120_000)
        point = page.evaluate(LINE_POINT_JS)
        page.mouse.click(point["x"], point["y"])
        _settle(page, wait_text="Generated cell", timeout_s=300)
        shot("pca_explorer")
        page.goto(f"{url}/moa_interpolation?" + "&".join(f"moa_targets={quote(m)}" for m in moas))
        _settle(page, wait_text="Cosine similarity to the target", timeout_s=600)
        shot("moa_interpolation")
        page.goto(f"{url}/feature_perturbation")
        _settle(page, wait_text="requested → measured", timeout_s=300)
        shot("feature_perturbation")
        browser.close()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a real-cell cp2image dataset folder")
    parser.add_argument("--model", default="bundled:cp2image-bbbc021-real")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    for path in take(args.data.resolve(), args.model, args.out, args.width):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Serve the app from a given folder with `streamlit run`, and read a page as a browser shows it.

Used by the Space and hosted-mode tests: a free port on 127.0.0.1, a bounded wait for
`/_stcore/health`, the server always stopped (terminate, then kill) on the way out;
`command_prefix` runs the server as another user (e.g. `setpriv` to `nobody`).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from app_harness import CHROMIUM, CHROMIUM_FLAGS, run_streamlit  # noqa: E402  (one server launcher for every test)

HOME_TEXT = "Turn CellProfiler profiles into single-cell images"


def serve(folder: Path, env: dict[str, str], *, log_path: Path, command_prefix: Sequence[str] = ()):
    """`streamlit run app/Home.py` with `folder` as working directory; yields the URL (see `run_streamlit`)."""
    return run_streamlit(folder, env, log_path=log_path, command_prefix=command_prefix)


def page_text(url: str, *, wait_for: str, timeout_ms: int = 90_000) -> tuple[str, list[str]]:
    """(the page's visible text once `wait_for` shows, the text of any error/exception boxes), in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_text(wait_for).first.wait_for(timeout=timeout_ms)
            page.wait_for_function(
                "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
            errors = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").all_inner_texts()
            return page.inner_text("body"), errors
        finally:
            browser.close()


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without cp2image/HF settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CP2IMAGE_", "HF_"))}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", **extra)
    return env

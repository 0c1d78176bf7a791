"""Serve the app from a given folder with `streamlit run`, and read a page as a browser shows it.

Used by the Space and hosted-mode tests: a free port on 127.0.0.1, a bounded wait for
`/_stcore/health`, the server always stopped (terminate, then kill) on the way out;
`command_prefix` runs the server as another user (e.g. `setpriv` to `nobody`).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
HEALTH_TIMEOUT_S = 90.0
HOME_TEXT = "Turn CellProfiler profiles into single-cell images"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(folder: Path, env: dict[str, str], *, log_path: Path, command_prefix: Sequence[str] = ()) -> Iterator[str]:
    """`streamlit run app/Home.py` with `folder` as working directory; yields the URL."""
    port = free_port()
    command = [*command_prefix, sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + HEALTH_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"streamlit exited with code {process.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no healthy server at {url} within {HEALTH_TIMEOUT_S:.0f} s")
                time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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

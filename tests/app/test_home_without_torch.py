"""Home is drawn without importing torch: its example comes from `cp2image.models.numpy_generator`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_home_is_drawn_without_importing_torch(app_assets: Path):
    """A fresh process runs Home as a first visitor does; torch is left to the warm-up (not run under AppTest)."""
    code = ("import sys; sys.path.insert(0, 'tests/app'); from app_harness import image_captions, start_app; "
            "at = start_app(timeout=120); print(repr(image_captions(at)), 'torch' in sys.modules)")
    env = {**os.environ, "CP2IMAGE_ASSETS": str(app_assets), "CP2IMAGE_WARMUP": "0"}
    env.pop("CP2IMAGE_MODEL", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    captions, torch_imported = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert "generated" in captions and torch_imported == "False", out.stdout[-2000:]

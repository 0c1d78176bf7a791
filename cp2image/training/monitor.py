"""Run monitoring: metrics CSV (+ TensorBoard when installed) and image grids.

Only the main process writes. On resume the CSV is cut back to the checkpoint's
step, so steps repeated after a crash are not logged twice.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
from PIL import Image

from cp2image.analysis.render import composite

log = logging.getLogger(__name__)


class MetricsLog:
    """Append-only CSV of per-step metrics; columns fixed by the first row."""

    def __init__(self, path: Path, *, resume_step: int | None = None, tensorboard_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.columns: list[str] | None = None
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="") as fh:
                rows = list(csv.DictReader(fh))
            kept = [r for r in rows if int(r["step"]) <= resume_step]
            if rows:
                self.columns = list(rows[0].keys())
                self._rewrite(kept)
        elif self.path.exists():
            self.path.unlink()
        self._tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(tensorboard_dir))
            except ImportError:  # tensorboard is optional
                log.debug("tensorboard not installed; metrics go to CSV only")

    def _rewrite(self, rows: list[dict]) -> None:
        with open(self.path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, **{k: float(v) for k, v in values.items()}}
        if self.columns is None:
            self.columns = list(row.keys())
            self._rewrite([])
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, float(value), step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def comparison_grid(rows: list[np.ndarray], *, pad: int = 2, scale: int = 2) -> np.ndarray:
    """Stack image rows (e.g. originals, generated) into one RGB grid, each row (N, 3, H, W),
    coloured with the project's one channel mapping (DNA blue, tubulin red, actin green)."""
    tiles = [composite(r) for r in rows]
    n, h, w = tiles[0].shape[:3]
    grid = np.full((len(tiles) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i, row in enumerate(tiles):
        for j in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y:y + h, x:x + w] = row[j]
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def save_png(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path

"""Pack generated images for download: one PNG per cell plus the profiles, in a zip.

The PNGs are the channel composite (DNA blue, tubulin red, actin green, see
`cp2image.channels`); the raw 3-channel uint8 array is included as `images.npy`
(no pickle) so that nothing is lost for downstream analysis.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from cp2image.analysis.render import composite

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def png_bytes(rgb: np.ndarray, *, compress_level: int = 6) -> bytes:
    """(H, W, 3) uint8 → PNG file bytes (lossless at every `compress_level`, 0–9; lower is faster)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def safe_name(text: str, *, fallback: str = "cell") -> str:
    """A file-name-safe version of a label ('latrunculin B 3 µM' → 'latrunculin_B_3_M')."""
    cleaned = _SAFE.sub("_", str(text)).strip("._")
    return cleaned[:60] or fallback


def images_zip(
    images: np.ndarray,
    table: pd.DataFrame,
    *,
    names: Sequence[str] | None = None,
    readme: str | None = None,
) -> bytes:
    """A zip with `images/<name>.png` (composites), `images.npy` (raw channels) and `profiles.csv`."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, 3, H, W); got {images.dtype} {images.shape}")
    if len(table) != len(images):
        raise ValueError(f"{len(images)} images but {len(table)} table rows")
    if names is None:
        names = [f"cell_{i:05d}" for i in range(len(images))]
    rgb = composite(images)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        seen: set[str] = set()
        for i, name in enumerate(names):
            stem = safe_name(name, fallback=f"cell_{i:05d}")
            if stem in seen:
                stem = f"{stem}_{i:05d}"
            seen.add(stem)
            archive.writestr(f"images/{stem}.png", png_bytes(rgb[i]))
        npy = io.BytesIO()
        np.save(npy, images, allow_pickle=False)
        archive.writestr("images.npy", npy.getvalue())
        archive.writestr("profiles.csv", table.to_csv(index=False))
        if readme:
            archive.writestr("README.txt", readme)
    return buffer.getvalue()


def upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of (…, H, W, 3) pictures so small crops stay crisp on screen."""
    if factor <= 1:
        return rgb
    return np.repeat(np.repeat(rgb, factor, axis=-3), factor, axis=-2)

"""The three BBBC021 channels and the one colour mapping used in every figure.

Colouring follows the paper's figures (F-actin shown in green): DNA → blue,
β-tubulin → red, F-actin → green. Every panel builder and the app import
`CHANNEL_COLOURS` from here, so changing it here changes it everywhere.
"""
from __future__ import annotations

CHANNELS: tuple[str, ...] = ("DNA", "Tubulin", "Actin")
"""Channel order of every image array, (N, 3, H, W)."""

CHANNEL_LABELS: dict[str, str] = {"DNA": "DNA (DAPI)", "Tubulin": "β-tubulin", "Actin": "F-actin"}

CHANNEL_COLOURS: dict[str, tuple[float, float, float]] = {
    "DNA": (0.0, 0.0, 1.0),      # blue
    "Tubulin": (1.0, 0.0, 0.0),  # red
    "Actin": (0.0, 1.0, 0.0),    # green
}

CROP_SIZE: int = 68
"""Default crop edge in pixels (the paper's d)."""

PIXEL_SIZE_UM: float = 0.65
"""BBBC021 pixel size in µm (ImageXpress 20×, 1280×1024 fields after binning)."""

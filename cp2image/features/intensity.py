"""Intensity: per compartment × channel statistics (CellProfiler MeasureObjectIntensity).

Computed by cp_measure on a mosaic of crops with intensities scaled to [0, 1]
(uint8 / 255), as CellProfiler scales images on load. Location_* outputs are
dropped (positions on a mosaic are meaningless).
"""
from __future__ import annotations

import numpy as np
from cp_measure.bulk import get_core_measurements

from .mosaic import Mosaic

INTENSITY: tuple[str, ...] = (
    "IntegratedIntensity", "MeanIntensity", "StdIntensity", "MinIntensity",
    "MaxIntensity", "IntegratedIntensityEdge", "MeanIntensityEdge", "StdIntensityEdge",
    "MinIntensityEdge", "MaxIntensityEdge", "MassDisplacement",
    "LowerQuartileIntensity", "MedianIntensity", "MADIntensity", "UpperQuartileIntensity",
)


def intensity_columns(compartment: str, channels: tuple[str, ...]) -> list[str]:
    return [f"{compartment}_Intensity_{m}_{ch}" for ch in channels for m in INTENSITY]


def measure_intensity(mosaic: Mosaic, compartment: str, channels: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Intensity columns for one compartment over all channels."""
    core = get_core_measurements(sanitize=False)
    labels = mosaic.labels[compartment]
    out: dict[str, np.ndarray] = {}
    for c, ch in enumerate(channels):
        raw = core["intensity"](labels, mosaic.pixels[c])
        for m in INTENSITY:
            out[f"{compartment}_Intensity_{m}_{ch}"] = np.asarray(raw[f"Intensity_{m}"], dtype=np.float64)
    return out

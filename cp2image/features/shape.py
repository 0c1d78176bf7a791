"""AreaShape: size and shape of each compartment (CellProfiler MeasureObjectSizeShape).

Computed by cp_measure (CellProfiler's own code, packaged) on a mosaic of
crops. Position-dependent outputs (Center_*, BoundingBoxMinimum/Maximum_*) and
raw image moments are dropped: on a crop they describe where the crop was cut,
not the cell.

Orientation is CellProfiler's (via scikit-image): degrees in [-90, 90], the
angle between the image's row (y) axis and the major axis of the equivalent
ellipse. A major axis along (row, col) = (cos θ, sin θ) gives θ: 0° is
vertical, +45° the ↘ diagonal (top-left to bottom-right), −45° the ↗ diagonal,
±90° horizontal.
"""
from __future__ import annotations

import numpy as np
from cp_measure.bulk import get_core_measurements

from .mosaic import Mosaic

SIZESHAPE: tuple[str, ...] = (
    "Area", "Perimeter", "ConvexArea", "EquivalentDiameter", "MajorAxisLength",
    "MinorAxisLength", "Eccentricity", "Orientation", "FormFactor", "Extent",
    "Solidity", "Compactness", "EulerNumber", "MaximumRadius", "MeanRadius",
    "MedianRadius", "BoundingBoxArea", "MinFeretDiameter", "MaxFeretDiameter",
)
ZERNIKE_DEGREE = 9


def zernike_indexes(degree: int = ZERNIKE_DEGREE) -> list[tuple[int, int]]:
    """(n, m) with 0 ≤ m ≤ n ≤ degree, n − m even: CellProfiler's Zernike set (30 for 9)."""
    return [(n, m) for n in range(degree + 1) for m in range(n + 1) if (n - m) % 2 == 0]


def shape_columns(compartment: str, *, zernike: bool = True) -> list[str]:
    cols = [f"{compartment}_AreaShape_{m}" for m in SIZESHAPE]
    if zernike:
        cols += [f"{compartment}_AreaShape_Zernike_{n}_{m}" for n, m in zernike_indexes()]
    return cols


def measure_shape(mosaic: Mosaic, compartment: str, *, zernike: bool = True) -> dict[str, np.ndarray]:
    """AreaShape columns for one compartment, one value per mosaic object."""
    core = get_core_measurements(sanitize=False)
    labels = mosaic.labels[compartment]
    pixels = mosaic.pixels[0]
    raw: dict[str, np.ndarray] = {}
    raw.update(core["sizeshape"](labels, pixels, calculate_advanced=False))
    raw.update(core["feret"](labels, pixels))
    out = {f"{compartment}_AreaShape_{m}": np.asarray(raw[m], dtype=np.float64) for m in SIZESHAPE}
    if zernike:
        z = core["zernike"](labels, pixels, zernike_numbers=ZERNIKE_DEGREE)
        for n, m in zernike_indexes():
            out[f"{compartment}_AreaShape_Zernike_{n}_{m}"] = np.asarray(z[f"Zernike_{n}_{m}"], dtype=np.float64)
    return out

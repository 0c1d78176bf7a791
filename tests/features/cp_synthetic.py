"""Draw synthetic crops with numpy: shapes whose measurements are known analytically."""
from __future__ import annotations

import numpy as np

SIZE = 68
CENTRE = (SIZE - 1) / 2.0


def ellipse_mask(a: float, b: float, theta_deg: float = 0.0, *, size: int = SIZE, centre: tuple[float, float] | None = None) -> np.ndarray:
    """Filled ellipse with semi-axis ``a`` along (row, col) = (cos θ, sin θ).

    θ = 0 is vertical (along rows), +45° the ↘ diagonal, ±90° horizontal: the
    convention of CellProfiler's AreaShape_Orientation.
    """
    cy, cx = centre if centre is not None else (CENTRE, CENTRE)
    yy, xx = np.mgrid[:size, :size].astype(float)
    dy, dx = yy - cy, xx - cx
    t = np.deg2rad(theta_deg)
    u = dy * np.cos(t) + dx * np.sin(t)  # along the major axis
    v = -dy * np.sin(t) + dx * np.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def draw_cell(nucleus: np.ndarray, cell: np.ndarray, *, seed: int = 0, dna: float = 200.0, cyto: float = 90.0) -> np.ndarray:
    """uint8 (3, H, W) crop: bright DNA in the nucleus, textured tubulin/actin in the cell."""
    rng = np.random.default_rng(seed)
    shape = nucleus.shape
    img = np.empty((3, *shape))
    img[0] = 10 + dna * nucleus + rng.normal(0, 3, shape)
    img[1] = 10 + cyto * cell * (0.8 + 0.4 * rng.random(shape)) + rng.normal(0, 3, shape)
    img[2] = 10 + cyto * cell * (0.8 + 0.4 * rng.random(shape)) + rng.normal(0, 3, shape)
    return np.clip(img, 0, 255).astype(np.uint8)



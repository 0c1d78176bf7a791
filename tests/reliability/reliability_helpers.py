"""Tiny seeded data and hypothesis settings shared by the reliability tests."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings

# Property tests here write files; keep them short and deterministic in CI.
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def tiny_cells(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Metadata_Plate": ["P1"] * n,
            "Metadata_Well": [f"B{i % 3 + 2:02d}" for i in range(n)],
            "Metadata_Compound": ["DMSO"] * n,
            "Metadata_Concentration": [0.0] * n,
            "Nuclei_AreaShape_Area": np.arange(n, dtype=float) + 100.0,
            "Cells_Intensity_MeanIntensity_Actin": np.linspace(0.0, 1.0, n),
        }
    )


def tiny_images(n: int, size: int = 68, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3, size, size), dtype=np.uint8)

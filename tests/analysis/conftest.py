"""Fixtures for analysis tests: a synthetic screen, a tiny untrained model, an analytic stub model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.channels import CROP_SIZE

NAMED = [
    "Nuclei_AreaShape_Area",
    "Nuclei_AreaShape_Perimeter",
    "Nuclei_Intensity_MeanIntensity_DNA",
    "Cells_AreaShape_Area",
    "Cells_Intensity_MeanIntensity_Actin",
    "Cells_Intensity_MeanIntensity_Tubulin",
]
FEATURES = NAMED + [f"Cytoplasm_Texture_Padding_{i:03d}" for i in range(115)]  # p = 121 → 3 steps of 50
CONCENTRATIONS = (0.1, 0.3, 1.0, 3.0)


def make_cells(seed: int = 0, n_dmso: int = 60, n_per_dose: int = 25, n_taxol: int = 30) -> pd.DataFrame:
    """Raw profiles with a latrunculin dose response along a fixed direction, plus taxol."""
    rng = np.random.default_rng(seed)
    p = len(FEATURES)
    base = np.r_[300.0, 70.0, 0.4, 1200.0, 0.3, 0.25, np.zeros(p - 6)]
    scale = np.r_[40.0, 6.0, 0.05, 150.0, 0.05, 0.04, np.ones(p - 6)]
    lat_dir = rng.standard_normal(p)
    taxol_dir = rng.standard_normal(p)
    frames = []

    def block(n, shift, compound, conc, moa):
        x = base + scale * (rng.standard_normal((n, p)) + shift)
        f = pd.DataFrame(x, columns=FEATURES)
        f["Metadata_Compound"], f["Metadata_Concentration"], f["Metadata_MoA"] = compound, conc, moa
        return f

    frames.append(block(n_dmso, 0.0, "DMSO", 0.0, "DMSO"))
    for c in CONCENTRATIONS:
        frames.append(block(n_per_dose, lat_dir * np.log10(1 + 10 * c), "latrunculin B", c, "Actin disruptors"))
    frames.append(block(n_taxol, taxol_dir * 2.0, "taxol", 1.0, "Microtubule stabilizers"))
    cells = pd.concat(frames, ignore_index=True)
    cells["Metadata_Plate"] = "P1"
    cells["Metadata_Well"] = [f"W{i % 12:02d}" for i in range(len(cells))]
    cells.index = pd.RangeIndex(1000, 1000 + len(cells))  # non-positional labels on purpose
    return cells


@pytest.fixture(scope="session")
def cells() -> pd.DataFrame:
    return make_cells()


@pytest.fixture(scope="session")
def tiny(cells: pd.DataFrame):
    from cp2image.models.testing import tiny_model

    dmso = cells.loc[cells["Metadata_Compound"] == "DMSO", FEATURES]
    return tiny_model(FEATURES, seed=0, feature_mean=dmso.mean().tolist(), feature_scale=dmso.std().tolist())


class DiscModel:
    """Analytic stand-in for a trained model: a nucleus disc of exactly the requested area.

    DNA channel: a disc with area `Nuclei_AreaShape_Area` px at the crop centre; tubulin
    and actin: a larger disc (`Cells_AreaShape_Area`). Lets measure-back be tested with
    a known answer, independent of any training.
    """

    def __init__(self, feature_names, size: int = CROP_SIZE):
        self.feature_names = list(feature_names)
        self.image_size = size
        yy, xx = np.mgrid[:size, :size]
        self._r2 = (yy - (size - 1) / 2) ** 2 + (xx - (size - 1) / 2) ** 2

    def generate(self, frame, *, batch_size: int = 256) -> np.ndarray:
        nuc = np.sqrt(np.clip(frame["Nuclei_AreaShape_Area"].to_numpy(float), 0, None) / np.pi)
        cell = np.sqrt(np.clip(frame["Cells_AreaShape_Area"].to_numpy(float), 0, None) / np.pi)
        out = np.zeros((len(frame), 3, self.image_size, self.image_size), np.uint8)
        for i in range(len(frame)):
            out[i, 0][self._r2 <= nuc[i] ** 2] = 200
            out[i, 1][self._r2 <= cell[i] ** 2] = 90
            out[i, 2][self._r2 <= cell[i] ** 2] = 120
        return out


@pytest.fixture
def disc_model() -> DiscModel:
    return DiscModel(FEATURES)


@pytest.fixture(scope="session")
def features() -> list[str]:
    """The synthetic screen's feature names, in model order (p = 121)."""
    return list(FEATURES)

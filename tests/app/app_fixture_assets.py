"""A tiny assets folder for app tests: a seeded BBBC021-like dataset, an untrained model, an evaluation.

Built with the project's own writers (`write_dataset`, `save_pretrained`) so the app
reads it exactly as it reads the bundled assets; `CP2IMAGE_ASSETS` points the app at it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.data.dataset import write_dataset

FEATURES = [
    "Nuclei_AreaShape_Area",
    "Nuclei_AreaShape_Eccentricity",
    "Nuclei_AreaShape_Perimeter",
    "Nuclei_Intensity_MeanIntensity_DNA",
    "Nuclei_Intensity_IntegratedIntensity_DNA",
    "Cells_AreaShape_Area",
    "Cytoplasm_AreaShape_Area",
    "Cells_Intensity_MeanIntensity_Actin",
    "Cells_Intensity_MeanIntensity_Tubulin",
    "Cells_AreaShape_Eccentricity",
]
# (compound, MoA, concentrations in µM, cells per concentration)
GROUPS = [
    ("DMSO", "DMSO", [0.0], 30),
    ("latrunculin B", "Actin disruptors", [0.1, 0.3, 1.0, 3.0], 10),
    ("taxol", "Microtubule stabilizers", [0.03, 0.3], 10),
    ("ALLN", "Protein degradation", [3.0], 10),
]
SIZE = 68


def _crop(rng: np.random.Generator, nucleus_radius: float, cell_radius: float, actin: float, tubulin: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    r = np.hypot(yy, xx)
    dna = np.where(r <= nucleus_radius, 200, 0)
    cell = r <= cell_radius
    act = np.where(cell, 60 + 120 * actin, 0)
    tub = np.where(cell & (r > nucleus_radius), 50 + 100 * tubulin, 0)
    noise = rng.integers(0, 12, size=(3, SIZE, SIZE))
    return np.clip(np.stack([dna, tub, act]) + noise, 0, 255).astype(np.uint8)


def make_dataset(path: Path, *, seed: int = 0) -> Path:
    """~110 cells whose features and images move together with concentration."""
    rng = np.random.default_rng(seed)
    rows, crops = [], []
    for compound, moa, doses, n in GROUPS:
        for dose in doses:
            effect = np.log10(1 + 10 * dose)  # 0 for DMSO, grows with dose
            for i in range(n):
                nr = 8 + 2 * effect * (compound != "latrunculin B") + rng.normal(0, 0.6)
                cr = 22 - 4 * effect * (compound == "latrunculin B") + rng.normal(0, 1.0)
                actin = float(np.clip(0.8 - 0.6 * effect * (compound == "latrunculin B") + rng.normal(0, 0.05), 0, 1))
                tubulin = float(np.clip(0.5 + 0.4 * effect * (compound == "taxol") + rng.normal(0, 0.05), 0, 1))
                crops.append(_crop(rng, nr, cr, actin, tubulin))
                n_area = np.pi * nr ** 2
                c_area = np.pi * cr ** 2
                rows.append({
                    "Metadata_Plate": f"P{i % 2 + 1}", "Metadata_Well": f"W{len(rows) % 6:02d}", "Metadata_Site": 1,
                    "Metadata_Compound": compound, "Metadata_Concentration": float(dose), "Metadata_MoA": moa,
                    "Metadata_Split": ["train", "val", "test"][i % 3],
                    "Nuclei_AreaShape_Area": n_area,
                    "Nuclei_AreaShape_Eccentricity": float(np.clip(0.3 + rng.normal(0, 0.05), 0, 1)),
                    "Nuclei_AreaShape_Perimeter": 2 * np.pi * nr,
                    "Nuclei_Intensity_MeanIntensity_DNA": 200 / 255 + rng.normal(0, 0.01),
                    "Nuclei_Intensity_IntegratedIntensity_DNA": n_area * 200 / 255,
                    "Cells_AreaShape_Area": c_area,
                    "Cytoplasm_AreaShape_Area": c_area - n_area,
                    "Cells_Intensity_MeanIntensity_Actin": (60 + 120 * actin) / 255,
                    "Cells_Intensity_MeanIntensity_Tubulin": (50 + 100 * tubulin) / 255,
                    "Cells_AreaShape_Eccentricity": float(np.clip(0.4 + 0.1 * effect + rng.normal(0, 0.05), 0, 1)),
                })
    cells = pd.DataFrame(rows)
    meta = {"features": FEATURES, "provenance": {"source": "tests/app fixture", "simulated": True, "seed": seed}}
    return write_dataset(path, np.stack(crops), cells, meta)


def make_model(path: Path, cells: pd.DataFrame, *, seed: int = 0) -> Path:
    """An untrained tiny CP2Image whose normalisation matches the fixture cells, saved the Hub way."""
    from cp2image.models.testing import tiny_model

    model = tiny_model(FEATURES, seed, feature_mean=cells[FEATURES].mean().tolist(),
                       feature_scale=cells[FEATURES].std().clip(lower=1e-6).tolist())
    model.save_pretrained(path)
    (path / "README.md").write_text(
        "---\nlicense: mit\ntags: [cp2image, test]\n---\n# Test model\n\nAn untrained tiny CP2Image for app tests.\n"
        "\n## Limitations\n\nIts images are meaningless.\n"
    )
    return path


def make_evaluation(path: Path, *, seed: int = 0, n_cells: int = 40) -> Path:
    """correlation.csv, pairs.parquet and metrics.json in the evaluation layout the report page reads."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    long = []
    rs = []
    for k, feature in enumerate(FEATURES):
        real = rng.normal(size=n_cells)
        noise = 0.2 + 0.3 * k
        generated = real + rng.normal(scale=noise, size=n_cells)
        rs.append(float(np.corrcoef(real, generated)[0, 1]))
        long.append(pd.DataFrame({"cell": np.arange(n_cells), "feature": feature, "real": real, "generated": generated}))
    table = pd.DataFrame({"feature": FEATURES, "pearson_r": rs, "n_cells": n_cells})
    table.sort_values("pearson_r", ascending=False).to_csv(path / "correlation.csv", index=False)
    pd.concat(long, ignore_index=True).to_parquet(path / "pairs.parquet", index=False)
    headline = {"fid_inception": None, "frechet_cellprofiler": 12.5,
                "fraction_r_above_0.5": float(np.mean(np.array(rs) > 0.5))}
    quality = {"available": True, "real": {"n": n_cells, "edge_frame": 1.02, "streak": 0.18, "puncta_per_crop": 2.9},
               "generated": {"n": n_cells, "edge_frame": 1.07, "streak": 0.21, "puncta_per_crop": 0.4},
               "puncta_by_class": [{"class": "Actin disruptors", "n": 4, "real": 13.1, "generated": 2.0},
                                   {"class": "DMSO", "n": 20, "real": 1.5, "generated": 0.2}]}
    (path / "metrics.json").write_text(json.dumps({"inception": {"available": False}, "headline": headline,
                                                   "image_quality": quality}))
    return path


def make_assets(root: Path, *, with_model: bool = True, with_evaluation: bool = True) -> Path:
    """`root/datasets/bbbc021-sim` + `root/models/cp2image-sim` (+ evaluation) like the bundled assets."""
    from cp2image.data.dataset import open_dataset

    dataset = make_dataset(root / "datasets" / "bbbc021-sim")
    if with_model:
        cells = open_dataset(dataset).cells
        model_dir = make_model(root / "models" / "cp2image-sim", cells)
        if with_evaluation:
            make_evaluation(model_dir / "evaluation")
    return root

"""Fixtures: a tiny measured dataset of drawn cells and a fast evaluation config."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from eval_stubs import draw_cells

from cp2image.data.dataset import Dataset, open_dataset, write_dataset
from cp2image.evaluation.encoder import EncoderConfig
from cp2image.evaluation.config import EvaluationConfig


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """150 drawn cells in 15 wells (10 per well), split by well, with measured features."""
    from cp2image.features import measure

    images, labels = draw_cells(150, seed=0)
    wells = [f"W{i // 10:02d}" for i in range(150)]
    split = {w: ("test" if k % 3 == 0 else "train") for k, w in enumerate(sorted(set(wells)))}
    measured = measure(images)
    cells = pd.DataFrame({
        "Metadata_Plate": "P1",
        "Metadata_Well": wells,
        "Metadata_Compound": ["DMSO" if lab == "DMSO" else f"drug {lab}" for lab in labels],
        "Metadata_Concentration": [0.0 if lab == "DMSO" else 1.0 for lab in labels],
        "Metadata_MoA": labels,
        "Metadata_Split": [split[w] for w in wells],
        "Metadata_Row": np.arange(150),
    })
    cells = pd.concat([cells, measured], axis=1)
    path = write_dataset(tmp_path_factory.mktemp("eval") / "tiny", images, cells,
                         meta={"provenance": {"source": "drawn test cells", "features": "cp2image.features.measure"}})
    return open_dataset(path)


@pytest.fixture(scope="session")
def fast_config() -> EvaluationConfig:
    return EvaluationConfig(
        max_cells=None, max_train_cells=200, kid_subsets=10, kid_subset_size=50,
        encoder=EncoderConfig(base_filters=4, embedding_dim=8, epochs=1, batch_size=32),
    )



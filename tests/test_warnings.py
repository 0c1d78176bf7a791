"""cp2image.warnings: each soft problem has its own warning class, so callers never read the wording."""
from __future__ import annotations

import warnings

import pandas as pd

from cp2image.models.testing import tiny_model
from cp2image.warnings import InputClipped


def test_the_models_clip_warning_has_its_own_class():
    """The generator's ±clip_sigma warning is told apart by class (the app no longer reads its wording)."""
    model = tiny_model(["Nuclei_AreaShape_Area", "Cells_AreaShape_Area"], seed=0)
    far = pd.DataFrame({"Nuclei_AreaShape_Area": [1e9], "Cells_AreaShape_Area": [1.0]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.normalise(far)
    assert [w.category for w in caught] == [InputClipped]

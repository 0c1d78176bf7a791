"""domain: which features of a profile lie beyond the model's training range, and how far."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cp2image.analysis.domain import OutOfRange, beyond_training_range
from cp2image.models.cp2image import FeatureStatistics


class _Model:
    """Only the feature space a model exposes (`CP2Image.feature_statistics`), no config."""

    feature_statistics = FeatureStatistics(names=("Nuclei_AreaShape_Area", "Cells_Intensity_MeanIntensity_DNA"),
                                           mean=np.array([100.0, 0.5]), scale=np.array([10.0, 0.1]), clip_sigma=10.0)


def test_a_feature_past_the_clip_limit_is_named_with_its_signed_distance_in_training_sds():
    profile = pd.DataFrame({"Nuclei_AreaShape_Area": [250.0], "Cells_Intensity_MeanIntensity_DNA": [0.6]})
    assert beyond_training_range(_Model(), profile) == [OutOfRange("Nuclei_AreaShape_Area", 15.0)]  # (250 − 100) / 10
    assert beyond_training_range(_Model(), profile.iloc[0]) == [OutOfRange("Nuclei_AreaShape_Area", 15.0)]  # a Series
    assert beyond_training_range(_Model(), profile.assign(Nuclei_AreaShape_Area=150.0)) == []  # 5 SD: inside


def test_the_furthest_feature_comes_first_and_each_feature_counts_its_furthest_row():
    profiles = pd.DataFrame({"Nuclei_AreaShape_Area": [250.0, -80.0], "Cells_Intensity_MeanIntensity_DNA": [0.5, -1.5],
                             "Metadata_Compound": ["x", "y"]})  # columns the model does not read are ignored
    assert beyond_training_range(_Model(), profiles) == [
        OutOfRange("Cells_Intensity_MeanIntensity_DNA", pytest.approx(-20.0)),  # row 2: (−1.5 − 0.5) / 0.1
        OutOfRange("Nuclei_AreaShape_Area", pytest.approx(-18.0))]  # row 2's −18 SD, not row 1's +15


def test_a_profile_without_the_models_features_is_refused():
    with pytest.raises(ValueError, match="lack 1 of the model's features"):
        beyond_training_range(_Model(), pd.DataFrame({"Nuclei_AreaShape_Area": [1.0]}))

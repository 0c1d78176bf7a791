"""Segmentation, CellProfiler-style measurements and profile post-processing.

- `segment(image)` / `segment_batch(images)`: central nucleus, cell, cytoplasm masks.
- `measure(images, n_jobs=, progress=)`: one row of CellProfiler-named features per crop.
- `ProfileNormaliser`: robust z-scores to DMSO per plate (fit/transform, to_dict/from_dict).
- `select_features(frame)`: drop NaN-heavy, constant and near-duplicate features.
"""
from .measure import ALL_GROUPS, COMPARTMENTS, FAILED_COLUMN, MeasureConfig, feature_names, measure
from .normalise import ProfileNormaliser
from .segmentation import BatchSegmentation, Segmentation, SegmentationConfig, segment, segment_batch
from .select import select_features, selection_report

__all__ = [
    "ALL_GROUPS",
    "COMPARTMENTS",
    "FAILED_COLUMN",
    "BatchSegmentation",
    "MeasureConfig",
    "ProfileNormaliser",
    "Segmentation",
    "SegmentationConfig",
    "feature_names",
    "measure",
    "segment",
    "segment_batch",
    "select_features",
    "selection_report",
]

"""Segmentation, CellProfiler-style measurements and profile post-processing."""
from .measure import COMPARTMENTS, FAILED_COLUMN, MeasureConfig, feature_names, measure
from .segmentation import BatchSegmentation, Segmentation, SegmentationConfig, segment, segment_batch

__all__ = [
    "COMPARTMENTS",
    "FAILED_COLUMN",
    "BatchSegmentation",
    "MeasureConfig",
    "Segmentation",
    "SegmentationConfig",
    "feature_names",
    "measure",
    "segment",
    "segment_batch",
]

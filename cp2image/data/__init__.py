"""Datasets: the on-disk format every stage shares, ingestion and the simulator."""
from cp2image.data.dataset import (
    Dataset,
    DatasetError,
    DatasetWriter,
    open_dataset,
    write_dataset,
)
from cp2image.data.columns import feature_columns, metadata_columns
from cp2image.data.splits import assign_splits_by_well

__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "open_dataset",
    "write_dataset",
    "feature_columns",
    "metadata_columns",
    "assign_splits_by_well",
]

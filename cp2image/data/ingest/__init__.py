"""`cp2image ingest`: real images → a cp2image dataset. One module per job:

- `config`         options of both commands (`CropIngestConfig`, `FieldIngestConfig`)
- `crop_sources`   where ready-made crops come from (.npz, folder + CSV, several combined)
- `channel_order`  the input's channel order → DNA, Tubulin, Actin
- `crops`          `ingest_crops`: normalise, measure, write ready-made crops
- `field_tables`   the image table, CellProfiler per-object tables and how they join
- `field_images`   reading one field's TIFFs and cutting crops out of it
- `fields`         `ingest_fields`: fields + objects table → dataset
- `nuclei`         `find_nuclei`, `crop_field`: pure per-field functions
- `nuclei_fields`  `ingest_fields_finding_nuclei`: fields without an objects table
- `streaming`      the resumable writer every path streams through, and measuring
- `summary`, `tables`, `splits`, `report`: counts, CSV/MoA helpers, splits, Markdown report
"""
from cp2image.data.ingest.channel_order import channel_permutation, parse_channel_order
from cp2image.data.ingest.config import CropIngestConfig, FieldIngestConfig
from cp2image.data.ingest.crop_sources import CropSource, combine_sources, folder_source, npz_source
from cp2image.data.ingest.crops import ingest_crops
from cp2image.data.ingest.field_images import crop_windows, read_field
from cp2image.data.ingest.field_tables import read_image_table
from cp2image.data.ingest.fields import ingest_fields
from cp2image.data.ingest.nuclei import Nuclei, crop_field, find_nuclei
from cp2image.data.ingest.nuclei_fields import ingest_fields_finding_nuclei
from cp2image.data.ingest.report import ingest_report
from cp2image.data.ingest.splits import SPLIT_BY, assign_plate_splits, assign_splits
from cp2image.data.ingest.summary import IngestError, IngestSummary
from cp2image.data.ingest.tables import annotate_moa, concentration_key, read_moa_table

__all__ = [
    "CropIngestConfig", "FieldIngestConfig", "CropSource", "Nuclei", "IngestError", "IngestSummary", "SPLIT_BY",
    "annotate_moa", "assign_plate_splits", "assign_splits", "channel_permutation", "combine_sources",
    "concentration_key", "crop_field", "crop_windows", "find_nuclei", "folder_source", "ingest_crops",
    "ingest_fields", "ingest_fields_finding_nuclei", "ingest_report", "npz_source", "parse_channel_order",
    "read_field", "read_image_table", "read_moa_table",
]

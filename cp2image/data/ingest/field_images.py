"""Reading one field of view and cutting crops out of it.

Crops: the nucleus centre is rounded to the nearest pixel (halves up) and lands on
crop pixel ``(crop_size // 2, crop_size // 2)``; a cell whose window would leave the
field is skipped and counted. Intensities become uint8 by `cp2image.data.intensity`
per field (default: each channel of a field divided by its maximum, as in the
original work) or per crop.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cp2image.channels import CHANNELS
from cp2image.data.ingest.config import FieldIngestConfig
from cp2image.data.ingest.field_tables import CENTER_X, CENTER_Y, SITE_COLUMN, SITE_IN_NAME, TABLE_CHANNELS, channel_path
from cp2image.data.ingest.summary import IngestError, IngestSummary
from cp2image.data.intensity import apply_limits, batch_to_uint8, channel_limits


def read_field(image_table: pd.DataFrame, row: int, *, root: Path, image_path: Path) -> np.ndarray:
    """The raw (3, H, W) field of image-table row `row`, channels in CHANNELS order.

    Each channel must be a single-plane unsigned-integer TIFF (BBBC021: 16-bit)
    and all three must have the same shape; errors name the file and column.
    """
    import tifffile

    planes = []
    for channel in CHANNELS:
        table_channel = TABLE_CHANNELS[channel]
        column = f"Image_FileName_{table_channel}"
        p = channel_path(image_table, row, table_channel, root)
        where = f"{p} ({column}, data row {row + 1} of {image_path})"
        try:
            plane = tifffile.imread(p)
        except FileNotFoundError as err:
            raise IngestError(f"{where}: file not found") from err
        except (tifffile.TiffFileError, ValueError, OSError, IndexError) as err:
            raise IngestError(f"{where}: unreadable TIFF ({type(err).__name__}: {err})") from err
        plane = np.asarray(plane)
        if plane.ndim != 2:
            squeezed = plane.squeeze()
            if squeezed.ndim != 2:
                raise IngestError(
                    f"{where}: expected one grayscale plane (H, W), got shape {plane.shape}; "
                    "export one TIFF per channel"
                )
            plane = squeezed
        if plane.dtype.kind != "u":
            raise IngestError(
                f"{where}: expected an unsigned-integer (e.g. 16-bit) grayscale TIFF, got dtype {plane.dtype}"
            )
        if planes and plane.shape != planes[0].shape:
            raise IngestError(
                f"{where}: shape {plane.shape} differs from the {CHANNELS[0]} channel's {planes[0].shape}"
            )
        planes.append(plane)
    return np.stack(planes)


def crop_windows(
    centres_x: np.ndarray, centres_y: np.ndarray, *, height: int, width: int, crop_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top-left corners of centred crops and which fit inside the field.

    Returns (x0, y0, inside, finite): centre pixel = floor(c + 0.5), corner =
    centre - crop_size // 2; `inside` is False where the window leaves the
    field, `finite` False for NaN centres.
    """
    cx = np.asarray(centres_x, dtype=np.float64)
    cy = np.asarray(centres_y, dtype=np.float64)
    finite = np.isfinite(cx) & np.isfinite(cy)
    half = crop_size // 2
    x0 = np.where(finite, np.floor(np.where(finite, cx, 0) + 0.5), 0).astype(np.int64) - half
    y0 = np.where(finite, np.floor(np.where(finite, cy, 0) + 0.5), 0).astype(np.int64) - half
    inside = finite & (x0 >= 0) & (y0 >= 0) & (x0 + crop_size <= width) & (y0 + crop_size <= height)
    return x0, y0, inside, finite


def field_site(image_table: pd.DataFrame, row: int) -> float:
    if SITE_COLUMN in image_table.columns:
        value = pd.to_numeric(pd.Series([image_table[SITE_COLUMN].iat[row]]), errors="coerce").iat[0]
        return float(value)
    match = SITE_IN_NAME.search(str(image_table["Image_FileName_DAPI"].iat[row]))
    return float(match.group(1)) if match else np.nan


class FieldCropper:
    """Reads each field once per run of its objects and cuts normalised crops."""

    def __init__(self, table: pd.DataFrame, *, root: Path, image_path: Path, config: FieldIngestConfig) -> None:
        self.table, self.root, self.image_path, self.config = table, root, image_path, config
        self._cached: tuple[int, np.ndarray, tuple[np.ndarray, np.ndarray] | None] | None = None
        self.fields_seen: set[int] = set()

    def crops(self, row: int, objects: pd.DataFrame, summary: IngestSummary) -> tuple[np.ndarray, np.ndarray]:
        """uint8 crops (n, 3, s, s) of the objects that fit, and the boolean mask of those objects."""
        if self._cached is None or self._cached[0] != row:
            raw = read_field(self.table, row, root=self.root, image_path=self.image_path)
            limits = channel_limits(raw, self.config.intensity) if self.config.scope == "field" else None
            self._cached = (row, raw, limits)
            self.fields_seen.add(row)
        _, raw, limits = self._cached
        s = self.config.crop_size
        x0, y0, inside, finite = crop_windows(objects[CENTER_X].to_numpy(), objects[CENTER_Y].to_numpy(),
                                              height=raw.shape[1], width=raw.shape[2], crop_size=s)
        summary.n_skipped_no_centre += int((~finite).sum())
        summary.n_skipped_border += int((finite & ~inside).sum())
        if not inside.any():
            return np.zeros((0, len(CHANNELS), s, s), dtype=np.uint8), inside
        stack = np.stack([raw[:, y:y + s, x:x + s] for x, y in zip(x0[inside], y0[inside])])  # (n, 3, s, s)
        if limits is not None:
            return apply_limits(stack, limits[0], limits[1], channel_axis=1), inside
        return batch_to_uint8(stack, self.config.intensity), inside

"""What an ingest run read, wrote and skipped, and the error it raises on bad input.

The counts are kept per written unit as well (`counts` / `add_counts`), so that a
resumed run reports the whole dataset, not only the part written after the kill.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cp2image.data.format import DatasetError

SPLIT_ORDER: tuple[str, ...] = ("train", "val", "test")  # as printed, whatever order batches added them in
# IngestSummary counters that each written unit adds to, recorded in the resume journal
UNIT_COUNTERS: tuple[str, ...] = ("n_written", "n_skipped_border", "n_skipped_no_centre", "n_unmatched_related",
                                  "n_measured", "n_segmentation_failed", "n_dropped_failed", "n_empty_crops")


class IngestError(DatasetError):
    """Input to `cp2image ingest` is unusable; the message names the file, column and fix."""


@dataclass
class IngestSummary:
    """What an ingestion run read, wrote and skipped (printed by the CLI)."""

    out: Path
    source: str  # "fields" or "crops"
    n_images: int = 0  # fields of view (fields) or crops (crops) read
    n_objects: int = 0  # candidate cells (object rows / crops) before filtering
    n_written: int = 0
    n_skipped_border: int = 0  # crop window would leave the field
    n_skipped_no_centre: int = 0  # NaN nucleus centre
    n_skipped_moa: int = 0  # dropped by --moa-only (no MoA annotation)
    n_unmatched_related: int = 0  # nuclei without a row in a related table (Cells.csv, ...): NaN features
    n_fields_absent: int = 0  # fields (no --objects) listed in the image table with no file under --root
    missing_files: list[str] = field(default_factory=list)  # channel files of incomplete fields (skipped)
    n_features: int = 0
    n_segmentation_failed: int | None = None  # only when features were measured
    n_measured: int = 0  # cells whose features were measured (before any --drop-failed)
    n_dropped_failed: int = 0  # cells dropped: segmentation failed or a feature undefined (--drop-failed)
    n_empty_crops: int = 0  # crops with no spatial structure in any channel (cp2image.data.quality), flagged
    splits: dict[str, int] = field(default_factory=dict)

    @property
    def segmentation_success_rate(self) -> float | None:
        if self.n_segmentation_failed is None or self.n_measured == 0:
            return None
        return 1.0 - self.n_segmentation_failed / self.n_measured

    def lines(self) -> list[str]:
        unit = "fields of view" if self.source == "fields" else "crops"
        out = [
            f"wrote {self.n_written} cells to {self.out}",
            f"  read {self.n_images} {unit}, {self.n_objects} candidate cells",
        ]
        if self.n_fields_absent:
            out.append(f"  {self.n_fields_absent} fields listed in the image table have no files under the root "
                       "(not downloaded): skipped")
        for path in self.missing_files:
            out.append(f"  skipped an incomplete field: {path} is missing (--strict makes this an error)")
        if self.source == "fields":
            out.append(f"  skipped {self.n_skipped_border} cells too close to the field border")
            out.append(f"  skipped {self.n_skipped_no_centre} cells without a nucleus centre (NaN)")
        if self.n_unmatched_related:
            out.append(f"  {self.n_unmatched_related} cells had no row in a related objects table (NaN features)")
        if self.n_skipped_moa:
            out.append(f"  skipped {self.n_skipped_moa} cells without an MoA annotation (--moa-only)")
        out.append(f"  {self.n_features} feature columns")
        rate = self.segmentation_success_rate
        if rate is not None:
            out.append(
                f"  segmentation succeeded on {self.n_measured - (self.n_segmentation_failed or 0)}"
                f"/{self.n_measured} cells ({100 * rate:.1f}%)"
            )
        if self.n_empty_crops:
            out.append(f"  {self.n_empty_crops} crops show no cell (every channel is noise or flat): kept, flagged "
                       "Metadata_EmptyCrop=True; leave them out of training and evaluation")
        if self.n_dropped_failed:
            out.append(f"  dropped {self.n_dropped_failed} cells whose segmentation failed or with undefined "
                       "(NaN) features (--drop-failed)")
        if self.splits:
            order = sorted(self.splits, key=lambda k: (SPLIT_ORDER.index(k) if k in SPLIT_ORDER else 3, k))
            out.append("  splits: " + ", ".join(f"{k}={self.splits[k]}" for k in order))
        return out

    def counts(self) -> dict:
        """The per-unit counters and split sizes now (see `since`)."""
        return {**{k: getattr(self, k) or 0 for k in UNIT_COUNTERS}, "splits": dict(self.splits)}

    def since(self, before: dict) -> dict:
        """What was added after `before = counts()`: one unit's share, stored in the journal."""
        now = self.counts()
        delta = {k: now[k] - before[k] for k in UNIT_COUNTERS if now[k] != before[k]}
        splits = {k: v - before["splits"].get(k, 0) for k, v in now["splits"].items() if v != before["splits"].get(k, 0)}
        return {**delta, **({"splits": splits} if splits else {})}

    def add_counts(self, note: dict) -> None:
        """Add one earlier unit's counts (read back from the journal of a resumed run)."""
        if note.get("n_measured"):  # measured cells: the failure count is a number, even if 0
            self.n_segmentation_failed = self.n_segmentation_failed or 0
        for key in UNIT_COUNTERS:
            if key in note:
                setattr(self, key, (getattr(self, key) or 0) + int(note[key]))
        for name, count in (note.get("splits") or {}).items():
            for known in SPLIT_ORDER:  # as a run that writes the unit itself reports them: all three, zeros too
                self.splits.setdefault(known, 0)
            self.splits[name] = self.splits.get(name, 0) + int(count)


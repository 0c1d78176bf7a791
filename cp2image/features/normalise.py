"""Robust per-plate normalisation of profiles to the DMSO controls.

Image-based profiling practice (pycytominer's ``mad_robustize``): on each
plate, every feature is centred on the median of that plate's control cells
and divided by their median absolute deviation scaled to a standard deviation
(MAD × 1.4826), so plate-to-plate intensity drift cancels and one unit means
"one control standard deviation":

    z = (x − median_DMSO,plate) / (1.4826 · MAD_DMSO,plate)

`ProfileNormaliser` is a fit/transform object so the statistics fitted on the
training data are stored (``to_dict()`` → dataset.json / a model config) and
reused unchanged on new data (``from_dict()``).

Fallbacks (each logged as a warning naming what fell back):

* a plate that has no control rows at fit time, or that is **unseen at fit
  time** (new data), uses the *pooled* statistics of all control rows at fit
  time; pass ``unseen_plates="error"`` to raise instead;
* a feature whose control MAD is 0 on a plate uses the pooled MAD; if the
  pooled MAD is also 0 the scale is 1 (the feature is only centred).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.columns import COMPOUND, PLATE, feature_columns
from .robust import MAD_TO_SD, median_mad

log = logging.getLogger(__name__)

FORMAT = "cp2image.ProfileNormaliser/1"


@dataclass
class ProfileNormaliser:
    """Robust z-scores against the control wells of each plate (median / MAD × 1.4826)."""

    features: list[str] | None = None  # None: every CellProfiler feature column of the fit frame
    plate_column: str = PLATE
    control_column: str = COMPOUND
    control_value: str = "DMSO"
    unseen_plates: str = "pooled"  # "pooled" (documented fallback) or "error"
    # fitted statistics: plate → (median, scale) arrays over `features`
    plate_stats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    pooled: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ fit
    def fit(self, frame: pd.DataFrame) -> "ProfileNormaliser":
        """Compute control median and scale per plate (and pooled over all plates)."""
        if self.unseen_plates not in ("pooled", "error"):
            raise ValueError(f"unseen_plates must be 'pooled' or 'error', got {self.unseen_plates!r}")
        for col in (self.plate_column, self.control_column):
            if col not in frame.columns:
                raise ValueError(
                    f"cannot fit ProfileNormaliser: column {col!r} is missing; "
                    f"pass plate_column=/control_column= naming your metadata columns"
                )
        features = list(self.features) if self.features is not None else feature_columns(frame)
        if not features:
            raise ValueError("cannot fit ProfileNormaliser: no feature columns (Cells_/Nuclei_/Cytoplasm_) in the frame")
        self._check_features(frame, features)
        controls = frame[frame[self.control_column] == self.control_value]
        if controls.empty:
            found = sorted(map(str, frame[self.control_column].dropna().unique()))[:10]
            raise ValueError(
                f"cannot fit ProfileNormaliser: no rows with {self.control_column} == {self.control_value!r} "
                f"(values present include {found}); set control_value= to your negative control"
            )
        self.features = features
        pooled_med, pooled_mad = median_mad(controls[features].to_numpy(dtype=np.float64))
        pooled_scale = MAD_TO_SD * pooled_mad
        zero_pooled = ~(pooled_scale > 0)
        if zero_pooled.any():
            log.warning(
                "control MAD is 0 over all plates for %d feature(s) (e.g. %s): scale set to 1 (centred only)",
                int(zero_pooled.sum()), [f for f, z in zip(features, zero_pooled) if z][:5],
            )
        pooled_scale = np.where(zero_pooled, 1.0, pooled_scale)
        self.pooled = (pooled_med, pooled_scale)
        self.plate_stats = {}
        for plate in frame[self.plate_column].dropna().unique():
            rows = controls[controls[self.plate_column] == plate]
            if rows.empty:
                log.warning("plate %s has no %s rows: using pooled control statistics", plate, self.control_value)
                continue
            med, mad = median_mad(rows[features].to_numpy(dtype=np.float64))
            scale = MAD_TO_SD * mad
            fallback = ~(scale > 0)
            scale = np.where(fallback, pooled_scale, scale)
            med = np.where(np.isnan(med), pooled_med, med)
            self.plate_stats[str(plate)] = (med, scale)
        return self

    # ------------------------------------------------------------ transform
    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``frame`` with the fitted features normalised; other columns untouched."""
        if self.pooled is None or self.features is None:
            raise ValueError("ProfileNormaliser is not fitted: call fit(frame) or from_dict(...) first")
        if self.plate_column not in frame.columns:
            raise ValueError(f"cannot normalise: column {self.plate_column!r} is missing")
        self._check_features(frame, self.features)
        out = frame.copy()
        values = frame[self.features].to_numpy(dtype=np.float64)
        plates = frame[self.plate_column].astype(str).to_numpy()
        med = np.empty_like(values)
        scale = np.empty_like(values)
        unseen: list[str] = []
        for plate in pd.unique(plates):
            rows = plates == plate
            if plate in self.plate_stats:
                m, s = self.plate_stats[plate]
            else:
                unseen.append(plate)
                m, s = self.pooled
            med[rows] = m
            scale[rows] = s
        if unseen:
            if self.unseen_plates == "error":
                raise ValueError(
                    f"plate(s) {unseen} were not seen when the normaliser was fitted; "
                    "fit on data that includes their controls, or use unseen_plates='pooled'"
                )
            log.warning("plate(s) %s unseen at fit time: normalised with pooled control statistics", unseen)
        out[self.features] = (values - med) / scale
        return out

    def fit_transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.fit(frame).transform(frame)

    # -------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready statistics (for dataset.json "normalisation" or a model config)."""
        if self.pooled is None or self.features is None:
            raise ValueError("ProfileNormaliser is not fitted; nothing to serialise")

        def enc(a: np.ndarray) -> list[float | None]:
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {
            "format": FORMAT,
            "method": "robust z-score to controls per plate: (x - median) / (1.4826 * MAD)",
            "features": list(self.features),
            "plate_column": self.plate_column,
            "control_column": self.control_column,
            "control_value": self.control_value,
            "unseen_plates": self.unseen_plates,
            "pooled": {"median": enc(self.pooled[0]), "scale": enc(self.pooled[1])},
            "plates": {p: {"median": enc(m), "scale": enc(s)} for p, (m, s) in self.plate_stats.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProfileNormaliser":
        """Rebuild a fitted normaliser from `to_dict()` output."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(
                f"not a ProfileNormaliser dict (expected format {FORMAT!r}, got {data.get('format') if isinstance(data, dict) else type(data).__name__!r})"
            )

        def dec(v: list[float | None]) -> np.ndarray:
            return np.array([np.nan if x is None else x for x in v], dtype=np.float64)

        n = len(data["features"])
        obj = cls(
            features=list(data["features"]),
            plate_column=data["plate_column"],
            control_column=data["control_column"],
            control_value=data["control_value"],
            unseen_plates=data.get("unseen_plates", "pooled"),
        )
        obj.pooled = (dec(data["pooled"]["median"]), dec(data["pooled"]["scale"]))
        obj.plate_stats = {p: (dec(s["median"]), dec(s["scale"])) for p, s in data["plates"].items()}
        for key, (m, s) in [("pooled", obj.pooled), *obj.plate_stats.items()]:
            if m.size != n or s.size != n:
                raise ValueError(f"normaliser dict is inconsistent: {key} has {m.size} values for {n} features")
        return obj

    @staticmethod
    def _check_features(frame: pd.DataFrame, features: list[str]) -> None:
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise ValueError(
                f"{len(missing)} feature column(s) missing from the frame: {missing[:10]}"
                + (" ..." if len(missing) > 10 else "")
                + "; measure them (cp2image features) or fit on the columns you have"
            )

"""Which input features lie beyond what the model was trained on, said in plain words.

The generator standardises each feature with its training mean and SD and clips the
result to ±`clip_sigma` (10 SD): it has never seen a cell further out, so it draws the
capped value instead. The model's own warning names the count and three raw feature
names; a biologist needs to know *which* features, *how far* out, and *why* the
profile went there, so pages compute this themselves from the model's statistics and
show `plain_warning(...)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cp2image.analysis.feature_labels import labelled, plain_number


@dataclass(frozen=True)
class OutOfRange:
    """One feature of a profile outside the model's training range."""

    feature: str
    sd: float  # signed distance from the training mean, in training SDs (before clipping)


def beyond_training_range(model: Any, profiles: pd.DataFrame | pd.Series) -> list[OutOfRange]:
    """Features more than the model's clip limit (`model.feature_statistics.clip_sigma` training SDs)
    from the training mean, furthest first.

    `profiles` holds raw values by feature name (one row or many; for many rows a feature's
    furthest value counts). Features the model does not read are ignored.
    """
    frame = profiles.to_frame().T if isinstance(profiles, pd.Series) else profiles
    stats = model.feature_statistics  # the model's feature space: names, mean, scale, clip limit
    names = list(stats.names)
    missing = [f for f in names if f not in frame.columns]
    if missing:
        raise ValueError(f"profiles lack {len(missing)} of the model's features, e.g. {missing[:3]}")
    raw = frame[names].to_numpy(dtype=np.float64)  # (N, p)
    z = (raw - stats.mean) / stats.scale
    limit = float(stats.clip_sigma)
    furthest = np.take_along_axis(z, np.nanargmax(np.abs(z), axis=0)[None], axis=0)[0]  # (p,) signed
    out = [OutOfRange(f, float(v)) for f, v in zip(names, furthest) if np.isfinite(v) and abs(v) > limit]
    return sorted(out, key=lambda item: -abs(item.sd))


def plain_warning(items: list[OutOfRange], *, limit: float, why: str, shown: int = 5) -> str:
    """One paragraph: how many features, which (readable name, CellProfiler name, how far), and why.

    `why` is the page's reason the profile went there, e.g. "the click is far from every cell".
    """
    if not items:
        return ""
    n = len(items)
    listed = "; ".join(f"{labelled(i.feature)} at {'+' if i.sd > 0 else '−'}{plain_number(abs(i.sd), digits=2)} SD"
                       for i in items[:shown])
    more = f"; and {n - shown} more" if n > shown else ""
    it = "them" if n != 1 else "it"
    return (f"{n} feature{'s' if n != 1 else ''} of this profile {'are' if n != 1 else 'is'} more than {limit:g} SD "
            f"from the training cells' average, beyond what the model accepts, so it drew {it} at {limit:g} SD "
            f"instead and the image understates {it}: {listed}{more}. Why: {why}")

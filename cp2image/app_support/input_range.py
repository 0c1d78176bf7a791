"""Which input features lie beyond what the model was trained on, said in plain words.

The generator clips each standardised feature to ±`clip_sigma` (10 SD). The model's own
warning names the count and three raw feature names; a biologist needs to know *which*
features, *how far* out, and *why* the profile went there. Pages find them with
`cp2image.analysis.domain.beyond_training_range` and show `plain_warning(...)`.
"""
from __future__ import annotations

from cp2image.analysis.domain import OutOfRange
from cp2image.analysis.feature_labels import labelled, plain_number


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

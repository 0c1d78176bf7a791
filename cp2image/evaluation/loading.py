"""Load any evaluable model (CP2Image or a Table 1 baseline) for `cp2image evaluate`.

Resolution (bundled / local folder or training run folder / Hub id, offline fallback)
is `cp2image.models.hub`'s one chain; this module only widens the accepted model
classes to the baselines and keeps the evaluation's result type.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ModelForEvaluation:
    model: object
    kind: str  # cp2image | vae | vaeplus | lsgan
    source: str  # display label, never a server path
    notice: str | None = None
    folder: Path | None = None  # where the weights (and the files beside them) were read from


def load_for_evaluation(spec: str | os.PathLike | None) -> ModelForEvaluation:
    """Resolve `spec` (see `ModelRef.parse`) to a loaded model in eval mode."""
    from cp2image.models.hub import MODEL_CLASSES, load_model

    loaded = load_model(spec, kinds=tuple(MODEL_CLASSES))
    return ModelForEvaluation(model=loaded.model, kind=loaded.kind, source=loaded.source, notice=loaded.notice,
                              folder=loaded.folder)


__all__ = ["ModelForEvaluation", "load_for_evaluation"]

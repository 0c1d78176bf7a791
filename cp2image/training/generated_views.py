"""The generator's own images, labelled by measuring them: training data that keeps the critic honest.

A critic trained on real crops alone is fooled by generated images. On the 282 val cells of the
simulated model (f67f8d1) it read the generated images almost exactly as the request (MSE 0.41
in standardised units, less than its error on the real crops), while `cp2image.features.measure`
found them far from it: the critic's reading and the measurement of the same generated images
differed by MSE 1.36, most for Texture, Granularity and Correlation features. Feature consistency
(training) and refinement (generation) then reward images that only look right to the critic.

Adding the generator's images, each labelled with its *measured* features, to the critic's
training set teaches it to read generated images the way measurement does; then a consistency
loss or a refinement step through it moves the measured features. `cp2image regressor
--generated-by MODEL` does this; `docs/generator-ablation.md` has the measurements.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratedViewsConfig:
    """Which requests the generator draws for the critic."""

    edits_per_request: int = 1  # extra views per request, each with one random coupled edit
    max_edit_sd: float = 2.0  # edit size δ ~ U(−max, max) SD on the edited feature (as the trainer's edits)
    seed: int = 0
    batch_size: int = 256
    n_jobs: int | None = None  # measurement worker processes (None: in this process)
    # also draw every request with the model's own critic-guided refinement: refinement searches for
    # inputs the critic misreads, so a critic that will refine must have seen (and measured) its results
    refined: bool = False

    def __post_init__(self) -> None:
        if self.edits_per_request < 0:
            raise ValueError(f"edits_per_request must be ≥ 0, got {self.edits_per_request}")
        if not self.max_edit_sd > 0:
            raise ValueError(f"max_edit_sd must be > 0, got {self.max_edit_sd}")


@dataclass
class GeneratedViews:
    """Generated crops and what measurement reads in them, row for row."""

    images: np.ndarray  # (n, C, H, W) uint8, as drawn (and, where `refined`, with refinement)
    measured: pd.DataFrame  # (n, features) from cp2image.features.measure on exactly these images
    requests: np.ndarray  # (n, p) the standardised inputs they were drawn from
    edited: np.ndarray  # (n,) bool: the request carries a random coupled edit
    refined: np.ndarray  # (n,) bool: drawn with the model's critic-guided refinement

    def __len__(self) -> int:
        return len(self.images)


def edited_requests(z: np.ndarray, config: GeneratedViewsConfig) -> np.ndarray:
    """`edits_per_request` copies of z (n, p), each row moved by one random coupled edit.

    The coupling is the Ledoit-Wolf regression of every feature on the edited one, fitted on z
    itself, so an edit moves its correlated features as the training's coupled edits do.
    """
    import torch

    from cp2image.training.consistency import coupling_matrix, sample_coupled_edits

    if config.edits_per_request == 0 or len(z) == 0:
        return np.zeros((0, z.shape[1]), np.float32)
    coupling = torch.from_numpy(coupling_matrix(z))
    stream = torch.Generator().manual_seed(config.seed)
    base = torch.from_numpy(np.asarray(z, np.float32))
    candidates = torch.arange(z.shape[1])
    copies = [sample_coupled_edits(base, coupling, candidates, max_sd=config.max_edit_sd, generator=stream)[0]
              for _ in range(config.edits_per_request)]
    return torch.cat(copies).numpy()


def generated_views(model, profiles: pd.DataFrame, config: GeneratedViewsConfig = GeneratedViewsConfig(), *,
                    progress: bool = False) -> GeneratedViews:
    """Draw `model`'s images of these profiles (and coupled edits of them) and measure them.

    `model` is a `CP2Image`. Views are drawn as the generator draws them (the critic must learn
    those images); `config.refined` adds each request drawn with the model's own refinement. Rows
    whose measurement is not finite stay in; the caller drops them as it drops real cells with
    failed segmentation.
    """
    from cp2image.features import measure

    z = model.normalise(profiles, warn=False)
    clip = float(model.config.clip_sigma)
    requests = np.concatenate([z, np.clip(edited_requests(z, config), -clip, clip)]).astype(np.float32)
    edited = np.arange(len(requests)) >= len(z)
    images = model.generate_from_normalised(requests, batch_size=config.batch_size, refine=False)
    refined = np.zeros(len(images), bool)
    if config.refined:
        if model.refinement is None:
            raise ValueError("refined views need a model folder with a critic (critic/), whose refinement they draw")
        drawn = model.generate_from_normalised(z, batch_size=config.batch_size, refine=True)
        images = np.concatenate([images, drawn])
        requests = np.concatenate([requests, z])
        edited = np.concatenate([edited, np.zeros(len(z), bool)])
        refined = np.concatenate([refined, np.ones(len(z), bool)])
    log.info("measuring %d generated views (%d requests, %d edited, %d refined)", len(images), len(z),
             int(edited.sum()), int(refined.sum()))
    measured = measure(images, n_jobs=config.n_jobs, progress=progress)
    return GeneratedViews(images=images, measured=measured.reset_index(drop=True), requests=requests, edited=edited,
                          refined=refined)

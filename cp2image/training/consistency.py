"""Feature consistency: teach the generator that its output must *measure* as its input.

Two terms, both through a frozen `FeatureRegressor` (the critic):

- consistency:  ‖R(G(z)) − z‖² over the features the critic can see — the
  generated image of a training profile must carry that profile's features;
- coupled edits: z' = z + δ · Σ[:, j] / Σ[j, j] (feature j moved by δ SD, every other
  feature by its conditional expectation given that move, Σ the Ledoit-Wolf
  covariance of the training profiles — the same conditional expectation as
  `cp2image.analysis.coupling`), and the loss asks the *measured change* to equal the
  requested change: ‖(R(G(z')) − R(G(z))) − (z' − z)‖², plus the same on feature j
  alone. No image of z' exists, so only a critic can supervise it; differences cancel
  the critic's per-cell bias.

Everything here works in the generator's standardised space; the critic's own
normalisation is converted by name, so a critic trained on a different row set (or
a superset of features) still fits.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cp2image.models.regressor import FeatureRegressor


def coupling_matrix(standardised: np.ndarray) -> np.ndarray:
    """C (p, p) with C[:, j] = Σ[:, j] / Σ[j, j], Σ the Ledoit-Wolf covariance of the rows.

    Moving feature j by δ moves every feature i by C[i, j] · δ in expectation (C[j, j] = 1).
    """
    from sklearn.covariance import LedoitWolf

    from cp2image.analysis.coupling import regression_columns

    x = np.asarray(standardised, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need a (n ≥ 2, p) matrix of standardised profiles, got shape {x.shape}")
    return regression_columns(LedoitWolf().fit(x).covariance_).astype(np.float32)


class FeatureCritic(nn.Module):
    """A frozen regressor that reads images in the generator's standardised units.

    `select` are the generator's feature positions the critic judges (reliable ones,
    matched by name); `forward(images)` returns predictions for those positions only.
    """

    def __init__(self, regressor: FeatureRegressor, generator_names: list[str], generator_mean: np.ndarray,
                 generator_scale: np.ndarray, *, min_r: float) -> None:
        super().__init__()
        self.regressor = regressor.eval()
        for p in self.regressor.parameters():
            p.requires_grad_(False)
        reg_index = {n: i for i, n in enumerate(regressor.config.feature_names)}
        reliable = set(regressor.reliable(min_r))
        gen_pos = [i for i, n in enumerate(generator_names) if n in reliable]
        if not gen_pos:
            raise ValueError(f"the consistency regressor judges none of the generator's features with "
                             f"held-out r ≥ {min_r}; lower consistency_min_r or train a better regressor")
        reg_pos = [reg_index[generator_names[i]] for i in gen_pos]
        reg_mean = np.asarray(regressor.config.feature_mean, dtype=np.float64)[reg_pos]
        reg_scale = np.asarray(regressor.config.feature_scale, dtype=np.float64)[reg_pos]
        g_mean, g_scale = np.asarray(generator_mean, np.float64)[gen_pos], np.asarray(generator_scale, np.float64)[gen_pos]
        self.names = [generator_names[i] for i in gen_pos]
        self.register_buffer("select", torch.tensor(gen_pos, dtype=torch.long))
        self.register_buffer("reg_select", torch.tensor(reg_pos, dtype=torch.long))
        # generator units = critic units · a + b
        self.register_buffer("a", torch.tensor(reg_scale / g_scale, dtype=torch.float32))
        self.register_buffer("b", torch.tensor((reg_mean - g_mean) / g_scale, dtype=torch.float32))

    def train(self, mode: bool = True) -> "FeatureCritic":
        super().train(mode)
        self.regressor.eval()  # always frozen statistics
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pred = self.regressor(images.float())[:, self.reg_select]  # (B, k) critic units
        return pred * self.a + self.b  # (B, k) generator-standardised units

    @classmethod
    def load(cls, path: str | Path, generator_names: list[str], generator_mean: np.ndarray,
             generator_scale: np.ndarray, *, min_r: float) -> "FeatureCritic":
        regressor = FeatureRegressor.from_pretrained(Path(path))
        return cls(regressor, generator_names, generator_mean, generator_scale, min_r=min_r)


def sample_coupled_edits(z: torch.Tensor, coupling: torch.Tensor, candidates: torch.Tensor, *, max_sd: float,
                         generator: torch.Generator | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One coupled edit per row: feature j ~ U(candidates), δ ~ U(−max_sd, max_sd).

    Returns z' (B, p) = z + δ · coupling[:, j], j (B,) and δ (B,).
    """
    b = z.shape[0]
    pick = torch.randint(len(candidates), (b,), generator=generator).to(z.device)
    j = candidates[pick]
    delta = ((torch.rand(b, generator=generator) * 2 - 1) * max_sd).to(z.device)
    shift = coupling[:, j].T * delta[:, None]  # (B, p)
    return z + shift, j, delta


def edit_loss(pred_edit: torch.Tensor, pred_base: torch.Tensor, requested: torch.Tensor,
              edited_pos: torch.Tensor) -> torch.Tensor:
    """‖Δpred − Δrequested‖² averaged over judged features, plus the same on the edited feature.

    pred_* and requested are (B, k) in generator units over the critic's features;
    edited_pos (B,) indexes the edited feature among those k.
    """
    diff = pred_edit - pred_base.detach() - requested  # (B, k)
    rows = torch.arange(diff.shape[0], device=diff.device)
    return diff.pow(2).mean() + diff[rows, edited_pos].pow(2).mean()

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

Angular features (AreaShape orientation, an axis of period P = 180°) are compared on
their period: the critic reads them as a vector v ≈ (cos φ, sin φ), φ = 2πθ/P, the
consistency error is ‖v − (cos φ_z, sin φ_z)‖² and the edit error
‖v' − R(Δφ) v‖² (the edited reading must be the base reading turned by the requested
angle). Both are scaled by (P / (2π s))², s the generator's SD of the angle, so a
small angular error costs what the same error in standardised units would. Edited
profiles have their angles wrapped back onto the period, the range the generator saw.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import logging
import math

import numpy as np
import torch
from torch import nn

from cp2image.analysis.domain import circular_period
from cp2image.models.regressor import FeatureRegressor

log = logging.getLogger(__name__)


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

    `select` are the generator's feature positions the critic judges (k reliable ones,
    matched by name). `forward(images)` returns a reading (B, k + a): column i < k is
    the judged feature i in generator units, or cos φ if it is angular; the last a
    columns are sin φ of the a angular judged features. Compare readings with
    `consistency_loss` and `edit_loss`, which treat angles on their period.
    """

    def __init__(self, regressor: FeatureRegressor, generator_names: list[str], generator_mean: np.ndarray,
                 generator_scale: np.ndarray, *, min_r: float, judged: Collection[str] | None = None) -> None:
        super().__init__()
        self.regressor = regressor.eval()
        for p in self.regressor.parameters():
            p.requires_grad_(False)
        reg_index = {n: i for i, n in enumerate(regressor.config.feature_names)}
        reg_periods = list(regressor.config.periods) or [0.0] * regressor.config.n_features
        reliable = set(regressor.reliable(min_r))
        if judged is not None:  # a CriticEnsemble's members judge one common set
            reliable &= set(judged)
        linear_angle = [n for n in generator_names if n in reliable and circular_period(n)
                        and not reg_periods[reg_index[n]]]
        if linear_angle:  # an angle regressed linearly is wrong at ±P/2: better not judged at all
            log.warning("consistency critic: %s regressed linearly (a regressor from before angular outputs); "
                        "not judged", linear_angle)
        gen_pos = [i for i, n in enumerate(generator_names) if n in reliable and n not in linear_angle]
        if not gen_pos:
            raise ValueError(f"the consistency regressor judges none of the generator's features with "
                             f"held-out r ≥ {min_r}; lower consistency_min_r or train a better regressor")
        reg_pos = [reg_index[generator_names[i]] for i in gen_pos]
        reg_mean = np.asarray(regressor.config.feature_mean, dtype=np.float64)[reg_pos]
        reg_scale = np.asarray(regressor.config.feature_scale, dtype=np.float64)[reg_pos]
        g_mean = np.asarray(generator_mean, np.float64)
        g_scale = np.asarray(generator_scale, np.float64)
        self.names = [generator_names[i] for i in gen_pos]
        periods = np.array([float(reg_periods[r]) for r in reg_pos])
        ang = np.flatnonzero(periods > 0)  # positions among the k judged features
        sin_col = {r: regressor.config.n_features + n for n, r in enumerate(regressor.config.angular)}
        self.register_buffer("select", torch.tensor(gen_pos, dtype=torch.long))
        self.register_buffer("reg_select", torch.tensor(reg_pos + [sin_col[reg_pos[i]] for i in ang],
                                                        dtype=torch.long))
        # generator units = critic units · a + b (linear features; identity on angular cosines)
        a = np.where(periods > 0, 1.0, reg_scale / g_scale[gen_pos])
        b = np.where(periods > 0, 0.0, (reg_mean - g_mean[gen_pos]) / g_scale[gen_pos])
        self.register_buffer("a", torch.tensor(a, dtype=torch.float32))
        self.register_buffer("b", torch.tensor(b, dtype=torch.float32))
        ang_gen = [gen_pos[i] for i in ang]
        self.register_buffer("angular", torch.tensor(ang, dtype=torch.long))
        self.register_buffer("angular_mask", torch.tensor(periods > 0))
        self.register_buffer("ang_mean", torch.tensor(g_mean[ang_gen], dtype=torch.float32))
        self.register_buffer("ang_scale", torch.tensor(g_scale[ang_gen], dtype=torch.float32))
        self.register_buffer("ang_period", torch.tensor(periods[ang], dtype=torch.float32))
        # (P / 2πs)²: a small angular error costs what it would in standardised units
        self.register_buffer("ang_weight", torch.tensor((periods[ang] / (2 * math.pi * g_scale[ang_gen])) ** 2,
                                                        dtype=torch.float32))
        # every angular generator input (judged or not), for wrapping edited profiles
        wrap = [(i, circular_period(n)) for i, n in enumerate(generator_names) if circular_period(n)]
        self.register_buffer("wrap_pos", torch.tensor([i for i, _ in wrap], dtype=torch.long))
        self.register_buffer("wrap_period", torch.tensor([v for _, v in wrap], dtype=torch.float32))
        self.register_buffer("wrap_mean", torch.tensor(g_mean[[i for i, _ in wrap]], dtype=torch.float32))
        self.register_buffer("wrap_scale", torch.tensor(g_scale[[i for i, _ in wrap]], dtype=torch.float32))

    def train(self, mode: bool = True) -> "FeatureCritic":
        super().train(mode)
        self.regressor.eval()  # always frozen statistics
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        readout = self.regressor(images.float())[:, self.reg_select]  # (B, k + a) critic units
        k = len(self.select)
        return torch.cat([readout[:, :k] * self.a + self.b, readout[:, k:]], dim=1)  # (B, k + a)

    def _phase(self, z_angles: torch.Tensor) -> torch.Tensor:
        """Generator-standardised angles (B, a) → phase 2πθ/P."""
        return (z_angles * self.ang_scale + self.ang_mean) * (2 * math.pi) / self.ang_period

    def _angular_errors(self, reading: torch.Tensor, target_cos: torch.Tensor, target_sin: torch.Tensor,
                        linear_errors: torch.Tensor) -> torch.Tensor:
        """`linear_errors` (B, k) with the angular columns replaced by the scaled vector error."""
        if not len(self.angular):
            return linear_errors
        k = len(self.select)
        err = ((reading[:, self.angular] - target_cos).pow(2) + (reading[:, k:] - target_sin).pow(2)) * self.ang_weight
        full = torch.zeros_like(linear_errors).index_copy(1, self.angular, err)
        return torch.where(self.angular_mask, full, linear_errors)

    def errors(self, reading: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Per judged feature squared error (B, k) of a reading against the generator's input z (B, p)."""
        target = z[:, self.select]
        linear = (reading[:, :len(self.select)] - target).pow(2)
        phase = self._phase(target[:, self.angular])
        return self._angular_errors(reading, torch.cos(phase), torch.sin(phase), linear)

    def consistency_loss(self, reading: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Mean of `errors`: ‖R(G(z)) − z‖² over judged features, angles on their period."""
        return self.errors(reading, z).mean()

    def edit_loss(self, reading_edit: torch.Tensor, reading_base: torch.Tensor, requested: torch.Tensor,
                  edited_pos: torch.Tensor) -> torch.Tensor:
        """`edit_loss` with angles on their period: the edited reading = the base reading turned by the request.

        `requested` (B, k) is z' − z over the judged features; `edited_pos` (B,) indexes
        the edited feature among them. The base reading is not trained (detached).
        """
        k = len(self.select)
        base = reading_base.detach()
        linear = (reading_edit[:, :k] - base[:, :k] - requested).pow(2)
        turn = requested[:, self.angular] * self.ang_scale * (2 * math.pi) / self.ang_period
        c, s = base[:, self.angular], base[:, k:]
        errors = self._angular_errors(reading_edit, c * torch.cos(turn) - s * torch.sin(turn),
                                      c * torch.sin(turn) + s * torch.cos(turn), linear)
        rows = torch.arange(errors.shape[0], device=errors.device)
        return errors.mean() + errors[rows, edited_pos].mean()

    def wrap(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, p) with every angular generator input wrapped onto [−P/2, P/2) (raw units)."""
        if not len(self.wrap_pos):
            return z
        raw = z[:, self.wrap_pos] * self.wrap_scale + self.wrap_mean
        raw = torch.remainder(raw + self.wrap_period / 2, self.wrap_period) - self.wrap_period / 2
        return z.index_copy(1, self.wrap_pos, (raw - self.wrap_mean) / self.wrap_scale)

    @classmethod
    def load(cls, path: str | Path, generator_names: list[str], generator_mean: np.ndarray,
             generator_scale: np.ndarray, *, min_r: float) -> "FeatureCritic":
        regressor = FeatureRegressor.from_pretrained(Path(path))
        return cls(regressor, generator_names, generator_mean, generator_scale, min_r=min_r)


class CriticEnsemble(nn.Module):
    """Several critics read as one: the mean of their readings, over the features every one of them judges.

    Why: refinement moves the input until the critic reads the image as asked, so it also
    finds whatever that one critic misreads. Critics of one recipe and different seeds
    misread differently; steering by their mean reading leaves less to exploit (on the
    4,608-cell scoring screen, three critics lifted both the MoA fidelity ratio and the
    features preserved above each of their members; docs/generator-ablation.md, "An
    ensemble of critics"). Readings are in the generator's units (each member converts its
    own normalisation), so members may come from different training runs. Used by
    generation-time refinement; `errors` is the members' common comparison. Training can read
    with it too (`TrainConfig.consistency_ensemble`): it has the training critic's interface.
    """

    def __init__(self, regressors: Sequence[FeatureRegressor], generator_names: list[str],
                 generator_mean: np.ndarray, generator_scale: np.ndarray, *, min_r: float) -> None:
        super().__init__()
        if not regressors:
            raise ValueError("a critic ensemble needs at least one regressor")
        common = set.intersection(*(set(r.reliable(min_r)) for r in regressors))
        self.members = nn.ModuleList(FeatureCritic(r, generator_names, generator_mean, generator_scale, min_r=min_r,
                                                   judged=common) for r in regressors)
        first = self.members[0]
        for i, member in enumerate(self.members[1:], start=1):
            if member.names != first.names or not torch.equal(member.angular, first.angular):
                raise ValueError(f"critic ensemble member {i} judges other features than member 0 (an angle one of "
                                 "them regresses linearly?); use members trained with the same features and outputs")

    @property
    def names(self) -> list[str]:
        return self.members[0].names

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(images) for member in self.members]).mean(dim=0)

    def errors(self, reading: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """`FeatureCritic.errors` of the mean reading (the members share judged features and angles)."""
        return self.members[0].errors(reading, z)

    # The training losses read the mean reading exactly as one critic's (the members share judged
    # features, angles and units), so an ensemble can stand in for `FeatureCritic` in training.
    @property
    def select(self) -> torch.Tensor:
        return self.members[0].select

    def wrap(self, z: torch.Tensor) -> torch.Tensor:
        return self.members[0].wrap(z)

    def consistency_loss(self, reading: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.members[0].consistency_loss(reading, z)

    def edit_loss(self, reading_edit: torch.Tensor, reading_base: torch.Tensor, requested: torch.Tensor,
                  edited_pos: torch.Tensor) -> torch.Tensor:
        return self.members[0].edit_loss(reading_edit, reading_base, requested, edited_pos)

    @classmethod
    def load(cls, path: str | Path, generator_names: list[str], generator_mean: np.ndarray,
             generator_scale: np.ndarray, *, min_r: float) -> "CriticEnsemble":
        """The critic folder's own regressor first, then the members its `members.json` lists (as refinement
        reads them: `BundledCritic.regressors`, whose errors name the missing or broken file)."""
        from cp2image.models.refine import BundledCritic

        return cls(BundledCritic(Path(path)).regressors, generator_names, generator_mean, generator_scale,
                   min_r=min_r)


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

"""An image → normalised-CellProfiler-feature regressor: the critic of feature consistency.

Why it exists: pixel MSE only teaches the generator to reproduce the training images
of the profiles it was given. It says nothing about a profile whose nucleus is 2 SD
larger than any training cell's own, so sweeps barely move (issue 13). A frozen,
differentiable regressor R(image) ≈ standardised features lets training ask "does
G(z') *measure* as z'?" for edited profiles z' that have no image.

Architecture choices, each for a measured reason (docs/generator-ablation.md):
- two coordinate channels (CoordConv): the measured object is the *central* cell of
  the crop, so the network must know where the centre is to tell it from neighbours;
- a global-average-pooled branch beside the flattened one: areas and mean
  intensities are averages of per-pixel maps, which pooling represents exactly;
- batch norm in eval mode once trained (frozen statistics), so a critic pass does
  not depend on the batch it is in;
- angular features (AreaShape orientation, an axis angle of period 180°) are read as
  the unit vector (cos 2πθ/P, sin 2πθ/P): a linear output regressing θ itself is
  discontinuous at ±P/2, so a nucleus lying near vertical got a wrong target and the
  generator's orientation input was never learnt (docs/feature-control.md).

The config stores the normalisation the targets were standardised with and each
feature's held-out Pearson r; training code uses only features the regressor can
actually see (r above a threshold), so it never teaches what the critic cannot judge.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cp2image.models.blocks import LEAKY_SLOPE
from cp2image.models.hub_io import StrictHubMixin


@dataclass
class RegressorConfig:
    """Feature contract, shape and held-out quality of a feature regressor (→ config.json)."""

    feature_names: list[str]  # output order (CellProfiler names)
    feature_mean: list[float]  # raw-unit mean the targets were standardised with
    feature_scale: list[float]  # raw-unit SD the targets were standardised with (> 0)
    image_size: int = 68  # input edge in pixels
    in_channels: int = 3  # DNA, tubulin, actin
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 96])  # channels per stage (each halves H, W)
    hidden: int = 256  # width of the dense head
    heldout_r: list[float] = field(default_factory=list)  # per feature Pearson r on held-out cells ([] = unknown)
    # per feature wrap period in raw units (0: linear); [] = every feature linear (regressors before angles)
    periods: list[float] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)  # data, steps, wall time

    def __post_init__(self) -> None:
        p = len(self.feature_names)
        if p == 0:
            raise ValueError("RegressorConfig: feature_names is empty")
        for name in ("feature_mean", "feature_scale"):
            if len(getattr(self, name)) != p:
                raise ValueError(f"RegressorConfig: {name} has {len(getattr(self, name))} entries for {p} features")
        if any(not float(s) > 0 for s in self.feature_scale):
            raise ValueError("RegressorConfig: feature_scale entries must be > 0")
        if self.heldout_r and len(self.heldout_r) != p:
            raise ValueError(f"RegressorConfig: heldout_r has {len(self.heldout_r)} entries for {p} features")
        if not self.widths:
            raise ValueError("RegressorConfig: widths needs at least one stage")
        if self.periods and len(self.periods) != p:
            raise ValueError(f"RegressorConfig: periods has {len(self.periods)} entries for {p} features")
        if any(not (math.isfinite(float(v)) and float(v) >= 0) for v in self.periods):
            raise ValueError("RegressorConfig: periods entries must be 0 (linear) or a positive period")

    @property
    def angular(self) -> list[int]:
        """Positions of the angular features (period > 0), in feature order."""
        return [i for i, v in enumerate(self.periods) if float(v) > 0]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


def coordinate_channels(batch: int, size: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(B, 2, size, size) y and x in [-1, 1], centre at 0 (CoordConv, Liu et al. 2018)."""
    line = torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(line, line, indexing="ij")
    return torch.stack([yy, xx]).unsqueeze(0).expand(batch, -1, -1, -1)


class _Stage(nn.Module):
    """conv (k×k) + BN + LeakyReLU, then 2×2 average pooling (halves H and W).

    One conv per stage keeps a critic pass cheap: it runs twice per generator step."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_ch), nn.LeakyReLU(LEAKY_SLOPE),
        )
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.body(x))  # (B, out_ch, H // 2, W // 2)


class FeatureRegressor(nn.Module, StrictHubMixin, library_name="cp2image", license="mit"):
    """Images (B, C, H, W) in [0, 1] → a readout (B, p + a) of the p features, a of them angular.

    Readout columns 0…p−1 follow `feature_names`: standardised values for linear
    features, cos(2πθ/P) for angular ones; columns p…p+a−1 hold sin(2πθ/P) of the
    angular features in order. `encode` maps standardised targets into this space,
    `decode` maps a readout back to standardised features (angles wrapped onto
    [−P/2, P/2)).
    """

    config_class = RegressorConfig

    def __init__(self, config: RegressorConfig) -> None:
        super().__init__()
        if isinstance(config, dict):
            config = RegressorConfig(**config)
        self.config = config
        widths = [config.in_channels + 2, *config.widths]
        # 5×5 at full resolution: cell outlines are a few pixels wide and blurred
        self.stages = nn.Sequential(*[_Stage(widths[i], widths[i + 1], 5 if i == 0 else 3)
                                      for i in range(len(config.widths))])
        side = config.image_size
        for _ in config.widths:
            side //= 2
        if side < 1:
            raise ValueError(f"image_size {config.image_size} is too small for {len(config.widths)} stages")
        flat = widths[-1] * side * side
        self.head = nn.Sequential(
            nn.Linear(flat + widths[-1], config.hidden), nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(config.hidden, config.n_features + len(config.angular)),
        )
        ang = config.angular
        self.register_buffer("_ang", torch.tensor(ang, dtype=torch.long), persistent=False)
        self.register_buffer("_ang_period", torch.tensor([float(config.periods[i]) for i in ang]), persistent=False)
        self.register_buffer("_ang_mean", torch.tensor([float(config.feature_mean[i]) for i in ang]), persistent=False)
        self.register_buffer("_ang_scale", torch.tensor([float(config.feature_scale[i]) for i in ang]),
                             persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, _ = images.shape
        coords = coordinate_channels(b, h, device=images.device, dtype=images.dtype)
        x = self.stages(torch.cat([images, coords], dim=1))  # (B, C_last, s, s)
        pooled = x.mean(dim=(2, 3))  # (B, C_last): averages of per-pixel maps (areas, mean intensities)
        return self.head(torch.cat([x.flatten(1), pooled], dim=1))  # (B, p + a) readout

    def encode(self, standardised: torch.Tensor) -> torch.Tensor:
        """Standardised features (B, p) → readout-space targets (B, p + a)."""
        if not len(self._ang):
            return standardised
        phase = self.phase(standardised[:, self._ang])  # (B, a) radians
        out = standardised.clone()
        out[:, self._ang] = torch.cos(phase)
        return torch.cat([out, torch.sin(phase)], dim=1)

    def phase(self, standardised_angles: torch.Tensor) -> torch.Tensor:
        """Standardised angular values (B, a) → phase 2πθ/P in radians."""
        raw = standardised_angles * self._ang_scale + self._ang_mean
        return raw * (2 * math.pi) / self._ang_period

    def decode(self, readout: torch.Tensor) -> torch.Tensor:
        """Readout (B, p + a) → standardised features (B, p); angles wrapped onto [−P/2, P/2)."""
        p = self.config.n_features
        out = readout[:, :p].clone()
        if len(self._ang):
            phase = torch.atan2(readout[:, p:], readout[:, self._ang])  # (−π, π]
            raw = phase * self._ang_period / (2 * math.pi)
            raw = torch.remainder(raw + self._ang_period / 2, self._ang_period) - self._ang_period / 2
            out[:, self._ang] = (raw - self._ang_mean) / self._ang_scale
        return out

    def reliable(self, min_r: float) -> list[str]:
        """Features whose held-out r is at least `min_r` (all of them if r was never measured)."""
        if not self.config.heldout_r:
            return list(self.config.feature_names)
        return [n for n, r in zip(self.config.feature_names, self.config.heldout_r)
                if math.isfinite(float(r)) and float(r) >= min_r]

"""CP2Image: CellProfiler feature vector → single-cell image (paper section 3).

The saved model is the generator only (the discriminator is a training aid and
lives in training checkpoints). Its config is the constructor argument and holds
everything needed to turn *raw* CellProfiler measurements into an image:
feature names in model order, the normalisation statistics fitted on the training
split, channel names, image size and training provenance.

Pixel convention: the network works on floats in [0, 1] (a dataset's per-image-max
normalised uint8 divided by 255; the generator ends in a sigmoid); `generate`
returns uint8 (N, 3, H, W) = round(255 × output).

Input convention: `generate` takes raw feature values, standardises them with the
stored mean/scale, and clips standardised values to ±`clip_sigma` (10 by default)
with a warning, because the network has never seen values that far out and would
otherwise extrapolate to saturated or blank images.

Pose convention: the generator does not draw orientation. `generate(..., pose=True)`
turns each image so its nucleus lies at the requested Nuclei_AreaShape_Orientation
(`cp2image.models.pose`); orientation sweeps (`cp2image.analysis.perturb`) do so by
default. Plain `generate` and `generate_from_normalised` return the generator's images:
turning a crop changes how its cell outline is cut by the crop edge, which costs shape
fidelity that profile-to-image generation should keep (docs/feature-control.md, round 3).

Refinement convention (`cp2image.models.refine`): a model folder may carry its critic, an
image → feature regressor, in `critic/`. `generate(..., refine=...)` then optimises the
generator's input for a few steps until the critic reads the image as the requested
profile. `model.refinement` is the default `generate` uses: the critic folder's settings
(`critic/refine.json`) when the folder has a critic, None (off) otherwise; set it to None
to switch refinement off.
"""
from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from cp2image.channels import CHANNELS, CROP_SIZE
from cp2image.models.generator import Generator, GeneratorConfig
from cp2image.models.hub_io import CONFIG_FILE, WEIGHTS_FILE, StrictHubMixin
from cp2image.models.refine import BundledCritic, CriticUnavailable, RefineConfig, find_critic, refine_inputs
from cp2image.warnings import InputClipped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureStatistics:
    """The feature space a model reads: names in model order and the raw-unit mean/SD it standardises with.

    Analyses (distances, perturbations, coupling digests) ask the model for this
    instead of reading its config, so the config layout stays the model's business.
    """

    names: tuple[str, ...]
    mean: np.ndarray  # (p,) float64, training-split mean in raw units
    scale: np.ndarray  # (p,) float64, training-split SD in raw units (> 0)
    clip_sigma: float  # standardised inputs are clipped to ±clip_sigma


@dataclass
class CP2ImageConfig:
    """Architecture, feature contract and provenance of a CP2Image model (→ config.json)."""

    feature_names: list[str]  # CellProfiler feature columns, in model input order
    feature_mean: list[float]  # per-feature mean on the training split (raw units)
    feature_scale: list[float]  # per-feature standard deviation on the training split (> 0)
    channels: list[str] = field(default_factory=lambda: list(CHANNELS))  # output channel order
    image_size: int = CROP_SIZE  # output edge in pixels
    base_filters: int = 32  # reference config: 32
    kernel_size: int = 5  # reference config: 5
    generator_channel_mults: list[float] = field(default_factory=lambda: [1.0, 2.0, 2.0, 1.0, 0.5])
    discriminator_channel_mults: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0, 4.0])
    batch_norm: bool = True
    upsample_mode: str = "nearest"
    padding_mode: str = "zeros"  # generator convolutions' margin: "zeros" (paper) or "replicate" (no edge frame)
    clip_sigma: float = 10.0  # standardised inputs are clipped to ±clip_sigma (with a warning)
    pixel_range: str = "[0, 1] float; uint8 = round(255 * x); per-image-max normalised crops"
    provenance: dict[str, Any] = field(default_factory=dict)  # data, command, steps, date, ...

    def __post_init__(self) -> None:
        p = len(self.feature_names)
        if p == 0:
            raise ValueError("CP2ImageConfig: feature_names is empty")
        if len(set(self.feature_names)) != p:
            dup = sorted({f for f in self.feature_names if self.feature_names.count(f) > 1})
            raise ValueError(f"CP2ImageConfig: duplicated feature names {dup[:5]}")
        for name in ("feature_mean", "feature_scale"):
            values = getattr(self, name)
            if len(values) != p:
                raise ValueError(f"CP2ImageConfig: {name} has {len(values)} entries for {p} features")
            if not all(math.isfinite(float(v)) for v in values):
                raise ValueError(f"CP2ImageConfig: {name} contains NaN or inf")
        if any(float(s) <= 0 for s in self.feature_scale):
            raise ValueError("CP2ImageConfig: feature_scale entries must be > 0")
        if not self.clip_sigma > 0:
            raise ValueError(f"CP2ImageConfig: clip_sigma must be > 0, got {self.clip_sigma}")

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(
            in_features=self.n_features, image_size=self.image_size,
            out_channels=len(self.channels), base_filters=self.base_filters,
            kernel_size=self.kernel_size, channel_mults=list(self.generator_channel_mults),
            batch_norm=self.batch_norm, upsample_mode=self.upsample_mode, padding_mode=self.padding_mode,
        )


class CP2Image(
    nn.Module,
    StrictHubMixin,
    library_name="cp2image",
    license="mit",
    tags=["cell-painting", "cellprofiler", "image-generation", "bbbc021"],
):
    """Generate single-cell images from CellProfiler profiles.

    >>> model = CP2Image.from_pretrained("assets/models/cp2image-sim")   # or a Hub repo id
    >>> images = model.generate(cells)  # DataFrame with the model's feature columns

    `from_pretrained` loads strictly (every tensor checked against config.json).
    """

    config_class = CP2ImageConfig

    def __init__(self, config: CP2ImageConfig) -> None:
        super().__init__()
        if isinstance(config, dict):  # tolerate a plain dict (e.g. read from JSON by hand)
            config = CP2ImageConfig(**config)
        self.config = config
        self.generator = Generator(config.generator_config())
        self.register_buffer("feature_mean", torch.tensor(config.feature_mean, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("feature_scale", torch.tensor(config.feature_scale, dtype=torch.float32),
                             persistent=False)
        self.pose_control = True  # orientation sweeps turn the cell (see `controls_pose`)
        self.critic: BundledCritic | None = None  # the folder's critic/ (set by from_pretrained), read lazily
        self.refinement: RefineConfig | None = None  # generate's default refinement; None = off

    @classmethod
    def _from_pretrained(cls, *, model_id: str, **kwargs: Any) -> "CP2Image":
        """Strict loading (StrictHubMixin), plus the folder's critic when it has one (refinement on by default)."""
        model = super()._from_pretrained(model_id=model_id, **kwargs)
        model.attach_critic(find_critic(model_id) if os.path.isdir(model_id) else _hub_critic(model_id, kwargs))
        return model

    def attach_critic(self, critic: BundledCritic | None) -> None:
        """Use `critic` for refinement (on by default, with the critic folder's refine.json settings); None
        detaches it (refinement off)."""
        self.critic = critic
        self.refinement = critic.default_config() if critic is not None else None

    @property
    def can_refine(self) -> bool:
        """Whether a critic is attached (whether it loads is checked when refinement first runs)."""
        return self.critic is not None

    # ------------------------------------------------------------------ properties
    @property
    def feature_names(self) -> list[str]:
        return list(self.config.feature_names)

    @property
    def feature_statistics(self) -> FeatureStatistics:
        """Names, mean and scale of the model's input standardisation (float64 copies)."""
        return FeatureStatistics(
            names=tuple(self.config.feature_names),
            mean=np.asarray(self.config.feature_mean, dtype=np.float64),
            scale=np.asarray(self.config.feature_scale, dtype=np.float64),
            clip_sigma=float(self.config.clip_sigma),
        )

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    @property
    def channels(self) -> list[str]:
        return list(self.config.channels)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ network
    def forward(self, z: torch.Tensor, noise_maps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Standardised features (B, p) → images (B, C, H, W) in [0, 1]; `noise_maps` only for a
        generator trained with block noise (training; the exported model draws the zero-noise image)."""
        return self.generator(z) if noise_maps is None else self.generator(z, noise_maps)

    # ------------------------------------------------------------------ inputs
    def raw_matrix(self, profiles: pd.DataFrame | pd.Series | np.ndarray) -> np.ndarray:
        """Raw feature values (N, p) float64 in model order, validated.

        DataFrame/Series: columns matched by name (extras ignored, missing → error).
        Array: must already have p columns in model order.
        """
        names = self.feature_names
        if isinstance(profiles, pd.Series):
            profiles = profiles.to_frame().T
        if isinstance(profiles, pd.DataFrame):
            missing = [f for f in names if f not in profiles.columns]
            if missing:
                shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
                raise ValueError(
                    f"profiles lack {len(missing)} of the model's {len(names)} features: {shown}. "
                    "Measure them with cp2image.features.measure or use a model trained on your features."
                )
            try:
                matrix = profiles[names].to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(f"profile feature columns must be numeric ({err})") from err
        else:
            matrix = np.asarray(profiles)
            if matrix.ndim == 1:
                matrix = matrix[None, :]
            if matrix.ndim != 2:
                raise ValueError(f"profiles array must be 2-D (N, {len(names)}), got shape {matrix.shape}")
            if matrix.shape[1] != len(names):
                raise ValueError(
                    f"profiles array has {matrix.shape[1]} columns but the model expects {len(names)} "
                    "features in model order (model.feature_names); pass a DataFrame to match by name"
                )
            if not np.issubdtype(matrix.dtype, np.number) and matrix.dtype != bool:
                raise ValueError(f"profiles array must be numeric, got dtype {matrix.dtype}")
            matrix = matrix.astype(np.float64)
        bad = ~np.isfinite(matrix)
        if bad.any():
            rows, cols = np.nonzero(bad)
            which = sorted({names[c] for c in cols})[:5]
            raise ValueError(
                f"profiles contain {int(bad.sum())} NaN/inf value(s) in {len(set(rows))} row(s), "
                f"e.g. features {which}; drop or impute those rows first"
            )
        return matrix

    def normalise(self, profiles: pd.DataFrame | pd.Series | np.ndarray, *, warn: bool = True) -> np.ndarray:
        """Raw profiles → standardised, clipped model inputs (N, p) float32."""
        matrix = self.raw_matrix(profiles)
        stats = self.feature_statistics
        z = (matrix - stats.mean) / stats.scale
        limit = stats.clip_sigma
        outside = np.abs(z) > limit
        if outside.any():
            if warn:
                cols = sorted({self.feature_names[c] for c in np.nonzero(outside)[1]})
                warnings.warn(
                    f"{int(outside.sum())} input value(s) lie beyond ±{limit:g} training standard deviations "
                    f"(e.g. {cols[:3]}); clipped to ±{limit:g}σ",
                    InputClipped, stacklevel=3,
                )
            z = np.clip(z, -limit, limit)
        return z.astype(np.float32)

    # ------------------------------------------------------------------ generation
    def resolve_refine(self, refine: "bool | RefineConfig | None") -> RefineConfig | None:
        """The refinement a `refine=` argument asks for: None → the model's default, False → off,
        True → the critic folder's settings; CriticUnavailable when refinement is asked for without a critic."""
        if refine is None:
            config = self.refinement
        elif refine is False:
            return None
        elif refine is True:  # the folder's tuned settings, also when the default was switched off
            config = self.critic.default_config() if self.critic is not None else RefineConfig()
        elif isinstance(refine, RefineConfig):
            config = refine
        else:
            raise TypeError(f"refine must be None, True, False or a RefineConfig, got {type(refine).__name__}")
        if config is None or config.steps == 0:
            return None
        if self.critic is None:
            raise CriticUnavailable(
                "refinement needs the model's critic, and this model folder has none (a critic/ sub-folder with "
                "a `cp2image regressor` output; see cp2image.models.refine.install_critic); generate with "
                "refine=False")
        return config

    def refine_normalised(self, z: torch.Tensor, config: RefineConfig) -> torch.Tensor:
        """Refined standardised inputs z' (B, p) for z (B, p): see `cp2image.models.refine`."""
        stats = self.feature_statistics
        # A caller under inference_mode or no_grad (benchmarks, user code) still gets refinement: the
        # optimisation needs autograd, and the critic must not be built from inference tensors.
        with torch.inference_mode(False), torch.enable_grad():
            critic = self.critic.critic_for(list(stats.names), stats.mean, stats.scale, config.min_r).to(z.device)
            frozen = [p.requires_grad for p in self.parameters()]
            for p in self.parameters():
                p.requires_grad_(False)
            try:
                return refine_inputs(self, critic, z.clone(), config, clip_sigma=stats.clip_sigma).z
            finally:
                for p, flag in zip(self.parameters(), frozen):
                    p.requires_grad_(flag)

    def generate_from_normalised(self, z: np.ndarray, *, batch_size: int = 256,
                                 refine: "bool | RefineConfig | None" = False) -> np.ndarray:
        """Standardised inputs (N, p) → uint8 images (N, C, H, W); eval mode, batched.

        `refine` as in `generate`; off by default here (this is the generator as drawn).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.config.n_features:
            raise ValueError(f"expected standardised inputs of shape (N, {self.config.n_features}), got {z.shape}")
        config = self.resolve_refine(refine)
        n, size = z.shape[0], self.image_size
        out = np.empty((n, len(self.channels), size, size), dtype=np.uint8)
        was_training = self.training
        self.eval()
        try:
            device = self.device
            for start in range(0, n, batch_size):
                batch = torch.from_numpy(z[start:start + batch_size]).to(device)
                if config is not None:
                    batch = self.refine_normalised(batch, config)
                with torch.inference_mode():
                    images = self(batch).float()
                    if not torch.isfinite(images.sum()):  # one reduction: a NaN/inf pixel makes the sum non-finite
                        raise ValueError("the model produced NaN/inf pixels; its weights are corrupt or diverged")
                    out[start:start + len(batch)] = (
                        images.clamp_(0, 1).mul_(255).round_().to(torch.uint8).cpu().numpy()
                    )
        finally:
            self.train(was_training)
        return out

    @property
    def controls_pose(self) -> bool:
        """Whether orientation sweeps turn the generated cell to the requested nucleus angle.

        True when the model reads Nuclei_AreaShape_Orientation and ``pose_control`` was not
        switched off on this instance (benchmarks set ``model.pose_control = False`` to
        measure the paper's raw generator through code that sweeps).
        """
        from cp2image.models.pose import POSE_FEATURE

        return self.pose_control and POSE_FEATURE in self.config.feature_names

    def generate(self, profiles: pd.DataFrame | pd.Series | np.ndarray, *, batch_size: int = 256,
                 pose: bool = False, refine: "bool | RefineConfig | None" = None) -> np.ndarray:
        """Raw CellProfiler profiles → uint8 images (N, C, H, W).

        DataFrame columns are matched by name (missing → ValueError listing them; extra
        columns ignored); an array must have `len(feature_names)` columns in model order.
        Inputs are standardised with the stored statistics and clipped to ±clip_sigma.

        ``pose=True`` (`cp2image.models.pose`): each generated cell is turned about the crop
        centre so that its measured nucleus orientation equals the requested raw
        Nuclei_AreaShape_Orientation (degrees, on its 180° period), because the generator
        does not draw orientation itself; a model without that input ignores it. Off by
        default: the turn re-cuts the cell outline at the crop edge (see module docstring).

        ``refine`` (`cp2image.models.refine`): None (default) uses ``model.refinement``, on
        when the model folder carries a critic; False draws the generator's image as is;
        True or a `RefineConfig` refines with those settings (an error without a critic).
        """
        raw = self.raw_matrix(profiles)
        images = self.generate_from_normalised(self.normalise(raw), batch_size=batch_size, refine=refine)
        if not pose:
            return images
        from cp2image.models.pose import align_orientation, requested_angles

        requested = requested_angles(raw, self.config.feature_names)
        if requested is None:
            return images
        for start in range(0, len(images), batch_size):
            stop = start + batch_size
            images[start:stop] = align_orientation(images[start:stop], requested[start:stop]).images
        return images


def _hub_critic(repo_id: str, kwargs: dict[str, Any]) -> BundledCritic | None:
    """A Hub repo's critic/ files (and an ensemble's members) through the Hub cache, or None when it has none."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    from cp2image.models.refine import CRITIC_DIR, MEMBERS_FILE, REGRESSOR_FILES, member_folders

    def fetch(name: str) -> Path:
        return Path(hf_hub_download(repo_id=repo_id, filename=f"{CRITIC_DIR}/{name}", revision=kwargs.get("revision"),
                                    cache_dir=kwargs.get("cache_dir"), token=kwargs.get("token"),
                                    local_files_only=bool(kwargs.get("local_files_only"))))

    try:
        folder = [fetch(name) for name in REGRESSOR_FILES][0].parent
    except EntryNotFoundError:
        return None
    try:
        fetch(MEMBERS_FILE)
    except EntryNotFoundError:
        return BundledCritic(folder)
    for member in member_folders(folder):  # inside the snapshot folder: hf_hub_download keeps the repo's layout
        for name in REGRESSOR_FILES:
            fetch(f"{member.relative_to(folder).as_posix()}/{name}")
    return BundledCritic(folder)


__all__ = ["CP2Image", "CP2ImageConfig", "RefineConfig", "WEIGHTS_FILE", "CONFIG_FILE"]

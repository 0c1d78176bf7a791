"""Training configuration: one dataclass, readable from JSON/TOML and overridable by flags.

Defaults follow the original work (batch 104, Adam 1e-3, 32 base filters, kernel 5).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cp2image.models.padding import check_padding_mode

MODEL_KINDS: tuple[str, ...] = ("cp2image", "vae", "vaeplus", "lsgan")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint and model config)."""

    model: str = "cp2image"  # one of MODEL_KINDS
    steps: int = 20_000  # optimiser steps (each: one discriminator + one generator update)
    batch_size: int = 104  # global batch (split across DDP processes); the paper's 104
    lr: float = 1e-3  # Adam learning rate, generator (paper: 1e-3)
    d_lr: float | None = None  # discriminator learning rate; None → lr
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    # architecture
    base_filters: int = 32
    kernel_size: int = 5
    generator_channel_mults: list[float] = field(default_factory=lambda: [1.0, 2.0, 2.0, 1.0, 0.5])
    discriminator_channel_mults: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0, 4.0, 4.0])
    batch_norm: bool = True
    upsample_mode: str = "nearest"
    padding_mode: str = "zeros"  # CP2Image generator convolutions: "zeros" (paper) or "replicate" (no edge frame)
    latent_dim: int = 128  # VAE / LSGAN latent size
    # losses: generator = pixel MSE + Σ_i γ_i(t) · MSE(D_i(orig), D_i(gen)); one entry per D block
    gamma: list[float] = field(default_factory=lambda: [1e-3, 1e-3, 1e-3, 1e-3, 1e-3])
    gamma_delay: list[int] = field(default_factory=lambda: [2000, 3000, 4000, 5000, 6000])  # step γ_i starts
    gamma_ramp: list[int] = field(default_factory=lambda: [2000, 2000, 2000, 2000, 2000])  # steps to reach γ_i
    discriminator_start: int = 0  # first step with discriminator updates (paper: 0)
    kl_weight: float = 0.02  # VAE: loss = MSE + kl_weight · KL / n_pixels
    # data
    features: list[str] | None = None  # None → the dataset's feature list (model order)
    split: str = "train"  # rows used for training ("all" → every row)
    max_nonfinite_fraction: float = 0.05  # drop features non-finite in more rows than this
    max_cells: int | None = None  # use at most this many training cells (quick runs)
    num_workers: int = 0  # DataLoader workers (each opens the memmap itself)
    # class-balanced sampling: None → uniform over cells (the paper); "moa", "compound" or a column name →
    # each cell drawn with weight count(its class)^-balance_power (1 → every class equally often)
    balance_by: str | None = None
    balance_power: float = 1.0
    # runtime
    seed: int = 0
    device: str = "auto"  # auto → cuda, then mps, then cpu
    amp: str = "auto"  # auto → bf16 autocast on cuda, off elsewhere; "bf16" or "off"
    channels_last: str = "auto"  # auto → on for cuda
    compile: bool = False  # torch.compile the networks
    num_threads: int = 0  # CPU threads for torch (0 → torch's default); 1 is fastest on a busy machine
    # DDP on CUDA: batch-norm statistics over the global batch (SyncBatchNorm). PyTorch's
    # SyncBatchNorm needs GPUs, so CPU/gloo runs normalise per process (see docs of Trainer).
    sync_batchnorm: bool = True
    ema_decay: float = 0.0  # > 0 keeps an EMA of generator weights and exports it
    init_from: str | None = None  # fine-tune: another run's checkpoint.safetensors, or an exported model folder
    # feature consistency (cp2image/training/consistency.py, docs/generator-ablation.md); off by default
    consistency_regressor: str | None = None  # FeatureRegressor folder (`cp2image regressor`); None → off
    consistency_weight: float = 0.0  # λ on ‖R(G(z)) − z‖² over the features the regressor can see
    consistency_min_r: float = 0.5  # judge only features with the regressor's held-out r ≥ this
    consistency_ensemble: bool = False  # read with the folder's critic ensemble (members.json), not its first critic
    edit_weight: float = 0.0  # λ on the coupled-edit loss: measured change of G(z') − G(z) = z' − z
    edit_max_sd: float = 2.0  # an edit moves one feature by δ ~ U(−edit_max_sd, edit_max_sd) SD
    edit_adversarial_weight: float = 0.0  # λ on a non-saturating GAN loss on edited images (D sees them too)
    consistency_start: int = 0  # first step with the consistency and edit terms
    # sharp, non-average cells (issue 13; docs/generator-ablation.md); all off by default
    noise_dim: int = 0  # N(0, 1) inputs appended to the features; init_from a noise-free model → zero columns
    block_noise: bool = False  # per-pixel noise maps in every generator block (init_from → zero strengths)
    projection_discriminator: bool = False  # D(x, y) = ψ(φ(x)) + ⟨V y, φ(x)⟩, y = standardised features
    adversarial_weight: float = 0.0  # λ on a non-saturating GAN loss on G(z) (the paper has none: hidden losses only)
    texture_weight: float = 0.0  # λ on placement-free texture statistics of G(z) vs X_orig (training/texture.py)
    pixel_pool: int = 1  # > 1: the pixel MSE compares pool × pool block means (losses.pixel_mse), not pixels
    diversity_weight: float = 0.0  # λ on losses.detail_diversity: two noise draws differ inside pixel_pool blocks
    detail_adversarial_weight: float = 0.0  # λ on a GAN loss from a second D that sees only the block detail
    # monitoring
    log_every: int = 10
    grid_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: bool = False  # also copy every checkpoint to checkpoints/step_XXXXXXX.safetensors
    grid_cells: int = 8
    progress: bool = True

    def __post_init__(self) -> None:
        if self.model not in MODEL_KINDS:
            raise ValueError(f"model must be one of {MODEL_KINDS}, got {self.model!r}")
        for name in ("steps", "batch_size", "log_every", "grid_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        n = len(self.gamma)
        if len(self.gamma_delay) != n or len(self.gamma_ramp) != n:
            raise ValueError(
                f"gamma, gamma_delay and gamma_ramp need one entry per discriminator layer; got "
                f"{n}, {len(self.gamma_delay)}, {len(self.gamma_ramp)}"
            )
        if n != len(self.discriminator_channel_mults):
            raise ValueError(
                f"gamma has {n} entries but the discriminator has {len(self.discriminator_channel_mults)} blocks"
            )
        if any(g < 0 for g in self.gamma) or any(r < 0 for r in self.gamma_ramp) or any(d < 0 for d in self.gamma_delay):
            raise ValueError("gamma, gamma_delay and gamma_ramp must be ≥ 0")
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"amp must be auto, bf16 or off, got {self.amp!r}")
        if self.channels_last not in ("auto", "on", "off"):
            raise ValueError(f"channels_last must be auto, on or off, got {self.channels_last!r}")
        for name in ("consistency_weight", "edit_weight", "edit_adversarial_weight", "edit_max_sd",
                     "adversarial_weight", "texture_weight"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        uses_critic = self.consistency_weight > 0 or self.edit_weight > 0
        if uses_critic and not self.consistency_regressor:
            raise ValueError("consistency_weight/edit_weight > 0 need consistency_regressor: a folder made by "
                             "`cp2image regressor --data DS --out DIR`")
        if uses_critic and self.model != "cp2image":
            raise ValueError(f"feature consistency needs feature inputs; model {self.model!r} has none")
        if self.consistency_ensemble and not uses_critic:
            raise ValueError("consistency_ensemble reads with a critic ensemble: it needs consistency_weight or "
                             "edit_weight > 0 and a consistency_regressor")
        if self.edit_adversarial_weight > 0 and self.edit_weight == 0:
            raise ValueError("edit_adversarial_weight > 0 needs edit_weight > 0 (edited images are made only then)")
        if int(self.pixel_pool) < 1:
            raise ValueError(f"pixel_pool must be ≥ 1 (1 = the paper's per-pixel MSE), got {self.pixel_pool}")
        if self.pixel_pool > 1 and self.model != "cp2image":
            raise ValueError(f"pixel_pool is a CP2Image option; model is {self.model!r}")
        if self.detail_adversarial_weight < 0:
            raise ValueError(f"detail_adversarial_weight must be ≥ 0, got {self.detail_adversarial_weight}")
        if self.detail_adversarial_weight > 0 and self.pixel_pool < 2:
            raise ValueError("detail_adversarial_weight > 0 needs pixel_pool ≥ 2: its discriminator sees what each "
                             "pixel adds to its pixel_pool block mean, the detail the pooled pixel loss leaves free")
        if self.diversity_weight < 0:
            raise ValueError(f"diversity_weight must be ≥ 0, got {self.diversity_weight}")
        if self.diversity_weight > 0 and (self.noise_dim < 1 or self.pixel_pool < 2):
            raise ValueError("diversity_weight > 0 needs noise_dim ≥ 1 (two draws to compare) and pixel_pool ≥ 2 "
                             "(it varies the detail inside the blocks the pooled pixel loss leaves free)")
        if int(self.noise_dim) < 0:
            raise ValueError(f"noise_dim must be ≥ 0, got {self.noise_dim}")
        sharpening = (self.noise_dim > 0 or self.block_noise or self.projection_discriminator
                      or self.adversarial_weight > 0 or self.texture_weight > 0)
        if sharpening and self.model != "cp2image":
            raise ValueError("noise_dim, block_noise, projection_discriminator, adversarial_weight and texture_weight "
                             f"are CP2Image options; model is {self.model!r}")
        check_padding_mode(self.padding_mode)
        if self.padding_mode != "zeros" and self.model != "cp2image":
            raise ValueError(f"padding_mode is a CP2Image option; model is {self.model!r}")
        if self.balance_power < 0:
            raise ValueError(f"balance_power must be ≥ 0, got {self.balance_power}")
        if self.balance_by is not None and not str(self.balance_by).strip():
            raise ValueError("balance_by must name a class column (e.g. \"moa\") or be left out")
        if len(self.adam_betas) != 2:
            raise ValueError(f"adam_betas needs two values, got {self.adam_betas}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """Read a .json or .toml file; `overrides` (e.g. from CLI flags) win."""
        path = Path(path)
        text = path.read_text()
        if path.suffix == ".toml":
            try:
                import tomllib  # Python ≥ 3.11
            except ImportError as err:  # pragma: no cover - depends on the interpreter
                raise ValueError(f"{path}: TOML configs need Python ≥ 3.11; use a .json config") from err
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise ValueError(f"{path}: config must be .json or .toml")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)

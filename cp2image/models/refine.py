"""Critic-guided refinement: nudge the generator's input until its image *measures* as asked.

Why: the generator is trained to obey its input, but on held-out cells it still draws a
blurry average cell whose measured features drift from the profile (issue 13). A frozen
image → standardised-feature critic (`cp2image.models.regressor.FeatureRegressor`, the
same kind the training's feature-consistency loss uses) is differentiable, so at
generation time we can ask "does G(z') read as z?" and move z' to make it so:

    z' = argmin ‖C(G(z')) − z‖² + λ ‖z' − z‖²,   z' ∈ [−clip, clip],   start z' = z

over the features the critic reads reliably (held-out r ≥ `min_r`; angles on their period,
as `cp2image.training.consistency.FeatureCritic` compares them), with K Adam steps and
the generator's weights frozen (eval mode). Output: G(z').

Why the input and not the pixels: every image stays one the generator can draw, which
limits fooling the critic with adversarial texture. Adam moves each input by at most
about `lr` per step, so z' stays within K · lr SD of the request. More steps lower the
critic's loss further but, past ~10, the *measured* features get worse again: the
critic starts being fooled (docs/generator-ablation.md, "refinement"). Results are
judged by `cp2image.features.measure`, never by the critic.

Each row is optimised independently: the loss is a sum over rows, Adam is
element-wise and batch norm runs on frozen statistics, so a cell's result does not
depend on the batch it is in. The one exception is *joint* refinement of a sweep
(`RefineConfig.smoothness` = μ > 0, set by `sweep_feature` from `sweep_smoothness`): the
rows are then the ordered steps of one sweep, and the refinement's correction
d_i = z'_i − z_i is penalised for its second differences along the sweep, μ‖D d‖² per
feature (D: the second-difference matrix; `sweep_roughness` measures it), which asks d to
change linearly along the sweep. Why: refined on its own, each step follows its own critic
error, which made the real model's area sweeps jitter (ρ 0.93 → 0.899; docs/feature-control.md,
round 4). The penalty is on d, not on z': the requests themselves bend where the domain clips
them, and the refinement must not undo a clip. It is applied as a proximal step after each
Adam step, d ← argmin_x ‖x − d‖² + μ‖Dx‖² = (I + μ·DᵀD)⁻¹ d (the Whittaker/Hodrick–Prescott
smoother, which leaves a linear d unchanged), not as a gradient: Adam's steps have size ~lr
whatever the gradient's size, so a stiff quadratic penalty fed to Adam makes the steps
oscillate (measured on a toy sweep: the correction came out *rougher* than refined step by
step; docs/feature-control.md, round 5).

The critic ships with the model in a `critic/` sub-folder (`config.json` +
`model.safetensors`, a FeatureRegressor folder, digest-checked on load), with the
refinement settings measured best for that model in `critic/refine.json` (`RefineConfig`
fields; absent = `RefineConfig()`). A critic may be an ensemble: `critic/members.json`
lists further FeatureRegressor sub-folders (`{"members": ["member-1", ...]}`), and
refinement then steers by the mean reading of all of them
(`cp2image.training.consistency.CriticEnsemble`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

if TYPE_CHECKING:  # imported where used: model loading need not import training code
    from cp2image.models.regressor import FeatureRegressor
    from cp2image.training.consistency import CriticEnsemble, FeatureCritic

CRITIC_DIR = "critic"  # sub-folder of a model folder holding its critic (FeatureRegressor folder)
REFINE_FILE = "refine.json"  # in CRITIC_DIR: the model's default RefineConfig
MEMBERS_FILE = "members.json"  # in CRITIC_DIR, optional: further critics of an ensemble, {"members": [sub-folder, ...]}
REGRESSOR_FILES = ("config.json", "model.safetensors")  # what a FeatureRegressor folder holds


class CriticUnavailable(ValueError):
    """Refinement was asked for, but the model has no usable critic."""


@dataclass(frozen=True)
class RefineConfig:
    """How far generation-time refinement goes (defaults: docs/generator-ablation.md, "refinement")."""

    steps: int = 10  # Adam steps on the input; 0 = the generator's image as drawn
    lr: float = 0.05  # Adam step size in standardised units (bounds the move: ≤ steps · lr SD per feature)
    prior_weight: float = 1.0  # λ of λ‖z' − z‖² (mean over features), keeps z' near the request
    min_r: float = 0.5  # only features the critic reads with held-out r ≥ min_r are judged
    # whether coupled feature sweeps refine by default (measured per model: refinement raised the real
    # model's sweep slopes and lowered the simulated model's; docs/feature-control.md, round 4)
    sweeps: bool = True
    # μ of the second-difference penalty across rows (module docstring). 0 = every row on its own. > 0 only
    # makes sense where the rows are the ordered steps of one sweep: `sweep_feature` sets it from
    # `sweep_smoothness`; plain `generate` keeps rows independent.
    smoothness: float = 0.0
    sweep_smoothness: float = 0.0  # the μ a sweep refines with by default (joint refinement; 0 = step by step)

    def __post_init__(self) -> None:
        if int(self.steps) != self.steps or self.steps < 0:
            raise ValueError(f"RefineConfig.steps must be a whole number ≥ 0, got {self.steps}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"RefineConfig.lr must be > 0, got {self.lr}")
        if not (math.isfinite(self.prior_weight) and self.prior_weight >= 0):
            raise ValueError(f"RefineConfig.prior_weight must be ≥ 0, got {self.prior_weight}")
        if not math.isfinite(self.min_r):
            raise ValueError(f"RefineConfig.min_r must be finite, got {self.min_r}")
        for name in ("smoothness", "sweep_smoothness"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"RefineConfig.{name} must be a number ≥ 0, got {value!r}")
        if not isinstance(self.sweeps, bool):
            raise ValueError(f"RefineConfig.sweeps must be true or false, got {self.sweeps!r}")


@dataclass
class RefineResult:
    """Refined inputs and the critic's loss before and after, per row."""

    z: torch.Tensor  # (B, p) refined standardised inputs
    loss_before: torch.Tensor  # (B,) critic loss of G(z)
    loss_after: torch.Tensor  # (B,) critic loss of G(z')


def refine_inputs(generator: Callable[[torch.Tensor], torch.Tensor], critic: "FeatureCritic", z: torch.Tensor,
                  config: RefineConfig, *, clip_sigma: float) -> RefineResult:
    """Optimise the generator's standardised input z (B, p) so that the critic reads G(z') as z.

    `generator` must be in eval mode with frozen weights (its parameters get no gradient
    here); `critic` is a `FeatureCritic` built for the generator's features. z' stays
    within ±`clip_sigma`. With `config.steps == 0`, z is returned unchanged. With
    `config.smoothness` > 0 the rows are taken as the ordered steps of one sweep and
    refined jointly (module docstring).
    """
    target = z.detach()
    zp = target.clone().requires_grad_(True)
    adam = _Adam(zp, lr=config.lr)
    smoother = sweep_smoother(len(target), config.smoothness, dtype=target.dtype, device=target.device)
    first = last = None
    with torch.enable_grad():
        for step in range(config.steps + 1):
            fit = critic.errors(critic(generator(zp)), target).mean(dim=1)  # (B,)
            if step == 0:
                first = fit.detach()
            if step == config.steps:
                last = fit.detach()
                break
            loss = fit + config.prior_weight * (zp - target).pow(2).mean(dim=1)
            (grad,) = torch.autograd.grad(loss.sum(), zp)  # a sum: each row's gradient is its own
            with torch.no_grad():
                adam.step(grad)
                if smoother is not None:  # the roughness penalty's proximal step (module docstring)
                    zp.copy_(target + smoother @ (zp - target))
                zp.clamp_(-clip_sigma, clip_sigma)
    return RefineResult(z=zp.detach(), loss_before=first, loss_after=last)


def sweep_roughness(offsets: torch.Tensor) -> torch.Tensor:
    """Σ_i mean_f (d_{i+1} − 2 d_i + d_{i−1})² over the rows of `offsets` (B, p), in order; 0 for B < 3.

    Zero exactly when the rows change linearly along the sweep (a constant or evenly growing correction).
    """
    if offsets.shape[0] < 3:
        return offsets.sum() * 0.0
    second = offsets[2:] - 2 * offsets[1:-1] + offsets[:-2]
    return second.pow(2).mean(dim=1).sum()


def sweep_smoother(n_steps: int, smoothness: float, *, dtype: torch.dtype = torch.float32,
                   device: torch.device | str = "cpu") -> torch.Tensor | None:
    """(I + μ·DᵀD)⁻¹ for D the (n−2, n) second-difference matrix: the minimiser of
    ‖x − d‖² + μ‖Dx‖² is this matrix times d. None where there is nothing to smooth (μ = 0 or n < 3)."""
    if smoothness <= 0 or n_steps < 3:
        return None
    eye = torch.eye(n_steps, dtype=torch.float64)
    second = eye[2:] - 2 * eye[1:-1] + eye[:-2]
    return torch.linalg.inv(eye + smoothness * second.T @ second).to(dtype=dtype, device=device)


class _Adam:
    """Adam (Kingma & Ba; torch.optim.Adam's defaults) on one tensor, written out.

    Why not torch.optim.Adam: constructing it imports torch._dynamo, about 3 s of CPU on the first
    refinement of a process (the app's first generated image). Same update, same defaults.
    """

    def __init__(self, param: torch.Tensor, *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    def step(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.mul_(b1).add_(grad, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / (1 - b1 ** self.t))


# ----------------------------------------------------------------------------- the critic file


@dataclass
class BundledCritic:
    """A model folder's critic, read lazily: loading a model stays as fast as before."""

    folder: Path  # <model folder>/critic
    _regressors: "list[FeatureRegressor] | None" = None
    _critics: dict | None = None

    @property
    def regressors(self) -> "list[FeatureRegressor]":
        """Every member: the folder's own regressor, then those `members.json` lists."""
        if self._regressors is None:
            self._regressors = [load_critic_regressor(folder) for folder in [self.folder, *member_folders(self.folder)]]
        return self._regressors

    def default_config(self) -> RefineConfig:
        """The folder's `refine.json` settings, else `RefineConfig()`; errors name the file."""
        import json

        path = self.folder / REFINE_FILE
        if not path.is_file():
            return RefineConfig()
        try:
            fields = json.loads(path.read_text())
            return RefineConfig(**fields)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as err:
            raise CriticUnavailable(f"{path}: not a valid refinement config ({err}); expected a JSON object "
                                    f"with fields of RefineConfig") from err

    def critic_for(self, names: list[str], mean: np.ndarray, scale: np.ndarray,
                   min_r: float) -> "FeatureCritic | CriticEnsemble":
        """The critic in the generator's units, judging features with held-out r ≥ min_r (cached per min_r);
        an ensemble's judges the features every member reads with r ≥ min_r."""
        from cp2image.training.consistency import CriticEnsemble, FeatureCritic

        if self._critics is None:
            self._critics = {}
        if min_r not in self._critics:
            regressors = self.regressors
            try:
                self._critics[min_r] = (FeatureCritic(regressors[0], names, mean, scale, min_r=min_r)
                                        if len(regressors) == 1 else
                                        CriticEnsemble(regressors, names, mean, scale, min_r=min_r))
            except (ValueError, KeyError) as err:
                raise CriticUnavailable(f"{self.folder}: the critic does not fit this model ({err})") from err
        return self._critics[min_r]


def member_folders(critic_folder: str | Path) -> list[Path]:
    """The further ensemble members `members.json` lists (none without the file); errors name the file."""
    import json

    folder = Path(critic_folder)
    path = folder / MEMBERS_FILE
    if not path.is_file():
        return []
    try:
        members = json.loads(path.read_text())["members"]
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise TypeError("'members' must be a list of sub-folder names")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise CriticUnavailable(f"{path}: not a valid member list ({err}); expected {{\"members\": "
                                f"[\"member-1\", ...]}}") from err
    out = []
    for name in members:
        member = (folder / name).resolve()
        if folder.resolve() not in member.parents:  # a listed path must stay inside the critic folder
            raise CriticUnavailable(f"{path}: member {name!r} lies outside the critic folder")
        out.append(folder / name)
    return out


def load_critic_regressor(folder: str | Path) -> "FeatureRegressor":
    """The FeatureRegressor in `folder` (strict, digest-checked); errors name the file and say what to do."""
    from cp2image.models.regressor import FeatureRegressor

    folder = Path(folder)
    for name in REGRESSOR_FILES:
        if not (folder / name).is_file():
            raise CriticUnavailable(f"{folder / name} is missing: the model's critic is incomplete; copy the "
                                    "critic's config.json and model.safetensors there (a `cp2image regressor` "
                                    "output folder), or delete the folder to generate without refinement")
    try:
        regressor = FeatureRegressor.from_pretrained(folder)
    except (ValueError, TypeError, OSError) as err:
        raise CriticUnavailable(f"{folder}: the model's critic cannot be loaded ({err})") from err
    if not regressor.config.heldout_r:
        raise CriticUnavailable(f"{folder / 'config.json'}: the critic records no held-out r per feature, so "
                                "refinement cannot tell which features it reads reliably")
    for p in regressor.parameters():
        p.requires_grad_(False)
    return regressor.eval()


def find_critic(model_dir: str | Path) -> BundledCritic | None:
    """The critic bundled in a model folder, or None when it has none (nothing is read yet)."""
    folder = Path(model_dir) / CRITIC_DIR
    return BundledCritic(folder) if folder.is_dir() else None


def install_critic(regressor_dir: str | Path, model_dir: str | Path, *, config: RefineConfig | None = None,
                   members: "Sequence[str | Path]" = ()) -> Path:
    """Copy a `cp2image regressor` output folder into `model_dir/critic` (config.json + model.safetensors),
    with `config` as the model's default refinement (`refine.json`) and any further `members` (regressor
    folders) as an ensemble (`critic/member-1`, … listed in `members.json`).

    The copy is loaded back strictly before it is kept, so a model folder never ships a
    critic that would fail later; an existing critic is replaced only then.
    """
    import dataclasses
    import json
    import shutil

    sources = [Path(regressor_dir), *map(Path, members)]
    for source in sources:
        load_critic_regressor(source)
    target = Path(model_dir) / CRITIC_DIR
    tmp = Path(model_dir) / (CRITIC_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names = [f"member-{i}" for i in range(1, len(sources))]
    for source, dest in zip(sources, [tmp, *(tmp / n for n in names)]):
        dest.mkdir(exist_ok=True)
        for name in REGRESSOR_FILES:
            shutil.copyfile(source / name, dest / name)
    if names:
        (tmp / MEMBERS_FILE).write_text(json.dumps({"members": names}, indent=2) + "\n")
    if config is not None:
        (tmp / REFINE_FILE).write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    check = BundledCritic(tmp)
    check.regressors  # noqa: B018 — every member loads strictly
    check.default_config()
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


__all__ = ["CRITIC_DIR", "MEMBERS_FILE", "REFINE_FILE", "REGRESSOR_FILES", "BundledCritic", "CriticUnavailable",
           "RefineConfig", "RefineResult", "find_critic", "install_critic", "load_critic_regressor", "member_folders",
           "refine_inputs", "sweep_roughness", "sweep_smoother"]

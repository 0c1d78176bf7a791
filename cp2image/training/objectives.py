"""What one training step does for each model kind (the paper's alternating updates).

Every objective owns its networks and optimisers and exposes `step(batch, t)`:
1. discriminator update (if the kind has one): real batch vs generated (detached);
2. generator update: the kind's reconstruction/adversarial loss.
Networks used for gradient-synchronised forward passes are looked up in `self.wrapped`
(DistributedDataParallel when distributed); the discriminator pass inside the generator
update uses the raw module with its parameters frozen, so no gradients are all-reduced
for a network that is not being updated.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from cp2image.models.cp2image import CP2Image, CP2ImageConfig
from cp2image.models.discriminator import Discriminator, EncoderConfig
from cp2image.models.generator import Generator
from cp2image.models.lsgan import LSGAN, LSGANConfig
from cp2image.models.vae import VAE, VAEConfig, VAEplus
from cp2image.training import losses
from cp2image.training.config import TrainConfig
from cp2image.training.consistency import CriticEnsemble, FeatureCritic, coupling_matrix, sample_coupled_edits
from cp2image.training.runtime import Runtime
from cp2image.training.schedules import layer_weights
from cp2image.training.texture import texture_loss

log = logging.getLogger(__name__)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients into `module`'s parameters (inputs still get gradients)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) → float in [0, 1] (per-image-max normalised crops / 255)."""
    return images.float().div_(255.0)


class Objective:
    """Base: networks, optimisers, wrapping and the shared discriminator/hidden-loss steps."""

    kind = ""
    generator_key = "generator"  # the network exported and tracked by EMA

    def __init__(self, config: TrainConfig, runtime: Runtime) -> None:
        self.config, self.runtime = config, runtime
        self.nets: dict[str, nn.Module] = {}
        self.wrapped: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- set-up -----------------------------------------------------------------
    def discriminator(self, image_size: int, n_channels: int, condition_dim: int = 0) -> Discriminator:
        c = self.config
        return Discriminator(EncoderConfig(
            image_size=image_size, in_channels=n_channels, base_filters=c.base_filters,
            kernel_size=c.kernel_size, channel_mults=list(c.discriminator_channel_mults),
            batch_norm=c.batch_norm, spectral_norm=True,
        ), condition_dim=condition_dim)

    def finalise(self, wrap) -> None:
        """Move to device, set memory format, create optimisers, wrap (DDP/compile)."""
        c, rt = self.config, self.runtime
        for name, net in self.nets.items():
            net.to(rt.device)
            if rt.channels_last:
                net.to(memory_format=torch.channels_last)
            lr = c.lr if name == self.generator_key or c.d_lr is None else c.d_lr
            self.optimizers[name] = torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(c.adam_betas))
        self.wrapped = {name: wrap(net) for name, net in self.nets.items()}

    def images(self, batch: dict[str, torch.Tensor], key: str) -> torch.Tensor:
        x = to_float_images(batch[key].to(self.runtime.device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last) if self.runtime.channels_last else x

    # -- shared steps -----------------------------------------------------------
    def discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, t: int,
                           condition: torch.Tensor | None = None, *, key: str = "discriminator",
                           suffix: str = "") -> dict[str, torch.Tensor]:
        """One update of D (`key`); `condition` (rows of real then fake) feeds a projection discriminator."""
        if t < self.config.discriminator_start:
            return {}
        opt = self.optimizers[key]
        opt.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            args = () if condition is None else (condition,)
            logits, _ = self.wrapped[key](torch.cat([real, fake.detach()]), *args)  # (2b,)
        b = real.shape[0]
        loss = losses.discriminator_bce(logits[:b], logits[b:])
        loss.backward()
        opt.step()
        with torch.no_grad():
            accuracy = ((logits[:b] > 0).float().mean() + (logits[b:] < 0).float().mean()) / 2
        return {f"loss_d{suffix}": loss.detach(), f"d_accuracy{suffix}": accuracy}

    def hidden_loss(self, original: torch.Tensor, generated: torch.Tensor, t: int
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Σ γ_i(t) MSE(D_i(orig), D_i(gen)); one D pass on the concatenated batch (shared BN stats)."""
        c = self.config
        weights = layer_weights(t, c.gamma, c.gamma_delay, c.gamma_ramp)
        zero = torch.zeros((), device=generated.device)
        if not any(weights):
            return zero, {}
        disc = self.nets["discriminator"]
        b = original.shape[0]
        with frozen(disc), self.runtime.autocast():
            _, hidden = disc(torch.cat([original, generated]))
        return self.weighted_hidden(hidden, b, weights)

    @staticmethod
    def weighted_hidden(hidden: list[torch.Tensor], b: int, weights: list[float]
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(Σ γ_i MSE, logs) from one D pass whose first `b` rows are the originals, the rest generated."""
        per_layer = losses.hidden_layer_losses([h[:b] for h in hidden], [h[b:] for h in hidden])
        logs = {f"hidden_{i}": v.detach() for i, v in enumerate(per_layer)}
        logs.update({f"gamma_{i}": torch.tensor(w) for i, w in enumerate(weights)})
        return losses.weighted_hidden_loss(per_layer, weights), logs

    def prepare(self, table) -> None:
        """Hook after `finalise`: kinds that need the training feature table set up here."""

    # -- per kind ---------------------------------------------------------------
    def step(self, batch: dict[str, torch.Tensor], t: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def preview(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        """uint8 images for the progress grid (eval mode)."""
        raise NotImplementedError


class CP2ImageObjective(Objective):
    """Generator: MSE(G(z), X_orig) + Σ γ_i L_i^H [+ consistency + coupled edits]; D: BCE on an independent real batch.

    With `consistency_regressor` set, a frozen critic (cp2image/training/consistency.py)
    adds λ_c ‖R(G(z)) − z‖² and λ_e · edit loss on coupled edits z'; with
    `edit_adversarial_weight` the discriminator also sees G(z') as fake and the
    generator gets a non-saturating GAN loss on it (edited images have no pixel target,
    so only D keeps them looking like cells).

    Sharp cells (all off by default): `noise_dim` appends N(0, 1) noise to z (seeded by
    step and rank; an edit pair shares its noise, so the edit alone separates them);
    `projection_discriminator` conditions D on z, whose real pairs are then the generator's
    own targets (X_orig, z) because the independent real batch carries no features;
    `adversarial_weight` adds a non-saturating GAN loss on G(z), read from the same D pass
    (real and generated together, as in D's update) that gives the hidden-layer losses;
    `texture_weight` adds a loss on placement-free texture statistics of G(z) against X_orig
    (cp2image/training/texture.py); `diversity_weight` draws G(z) a second time with other noise and asks
    the two to differ in the detail inside `pixel_pool` blocks (losses.detail_diversity; the second draw is
    its own batch-norm batch); `detail_adversarial_weight` adds a second (projection) discriminator that sees
    only that block detail, and its GAN loss on G(z); `consistency_ensemble` reads the critic terms with the critic
    folder's ensemble. All measured in docs/generator-ablation.md.
    """

    kind = "cp2image"
    generator_key = "generator"

    def __init__(self, config: TrainConfig, runtime: Runtime, model_config: CP2ImageConfig) -> None:
        super().__init__(config, runtime)
        generator = CP2Image(model_config)
        if config.noise_dim or config.block_noise:
            # CP2Image's own config has no noise field: the trainer exports the zero-noise draw as a plain
            # generator (cp2image.training.noise_free; docs/generator-ablation.md)
            generator.generator = Generator(replace(model_config.generator_config(), noise_dim=config.noise_dim,
                                                    block_noise=config.block_noise))
        self.nets["generator"] = generator
        condition_dim = model_config.n_features if config.projection_discriminator else 0
        self.nets["discriminator"] = self.discriminator(model_config.image_size, len(model_config.channels),
                                                        condition_dim)
        if config.detail_adversarial_weight > 0:
            self.nets["detail_discriminator"] = self.discriminator(model_config.image_size,
                                                                   len(model_config.channels), condition_dim)
        self.critic: FeatureCritic | CriticEnsemble | None = None
        self.coupling: torch.Tensor | None = None  # (p, p), C[:, j] = Σ[:, j] / Σ[j, j]
        self.edit_candidates: torch.Tensor | None = None  # generator positions edits may move
        self.critic_position: torch.Tensor | None = None  # generator position → index among critic features

    def prepare(self, table) -> None:
        c = self.config
        if not c.consistency_regressor:
            return
        kind = CriticEnsemble if c.consistency_ensemble else FeatureCritic
        self.critic = kind.load(c.consistency_regressor, table.names, table.mean, table.scale,
                                min_r=c.consistency_min_r).to(self.runtime.device)
        log.info("consistency critic judges %d of %d features (held-out r ≥ %g)",
                 len(self.critic.names), len(table.names), c.consistency_min_r)
        if c.edit_weight > 0:
            self.coupling = torch.from_numpy(coupling_matrix(table.standardised)).to(self.runtime.device)
            self.edit_candidates = self.critic.select
            position = torch.full((len(table.names),), -1, dtype=torch.long)
            position[self.critic.select.cpu()] = torch.arange(len(self.critic.select))
            self.critic_position = position.to(self.runtime.device)

    def _edits(self, z: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Coupled edits seeded by (seed, step, rank), so a resumed run repeats them exactly."""
        rt = self.runtime
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + 7 * t + 104_729 * rt.rank + 1)
        z_edit, j, delta = sample_coupled_edits(z, self.coupling, self.edit_candidates.cpu(),
                                                max_sd=self.config.edit_max_sd, generator=g)
        return self.critic.wrap(z_edit), j, delta  # angles back onto their period

    def noise(self, n: int, t: int) -> torch.Tensor | None:
        """(n, noise_dim) N(0, 1) seeded by (seed, step, rank), so a resumed run repeats it; None without noise."""
        c, rt = self.config, self.runtime
        if not c.noise_dim:
            return None
        g = torch.Generator().manual_seed(c.seed * 1_000_003 + 11 * t + 104_729 * rt.rank + 2)
        return torch.randn(n, c.noise_dim, generator=g).to(rt.device)

    def noise_maps(self, n: int, t: int, *, pairs: bool = False) -> list[torch.Tensor] | None:
        """Block noise maps for n images seeded by (seed, step, rank), repeated for an edit pair's second
        half when `pairs` (the edit alone separates a pair); None without block noise."""
        c, rt = self.config, self.runtime
        if not c.block_noise:
            return None
        g = torch.Generator().manual_seed(c.seed * 1_000_003 + 13 * t + 104_729 * rt.rank + 3)
        maps = self.nets["generator"].generator.sample_noise_maps(n, generator=g, device=rt.device)
        return [torch.cat([m, m]) for m in maps] if pairs else maps

    def _adversarial_and_hidden(self, original: torch.Tensor, fake: torch.Tensor, z: torch.Tensor, t: int
                                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(non-saturating loss on D(G(z), z), Σ γ_i L_i^H, logs) from one frozen D pass on [original; fake]."""
        if self.config.adversarial_weight == 0:
            hidden, logs = self.hidden_loss(original, fake, t)
            return torch.zeros((), device=fake.device), hidden, logs
        c = self.config
        weights = layer_weights(t, c.gamma, c.gamma_delay, c.gamma_ramp)
        disc, b = self.nets["discriminator"], original.shape[0]
        args = (torch.cat([z, z]),) if c.projection_discriminator else ()
        with frozen(disc), self.runtime.autocast():
            logits, hidden_all = disc(torch.cat([original, fake]), *args)
        adversarial = losses.generator_nonsaturating(logits[b:])
        if not any(weights):
            return adversarial, torch.zeros((), device=fake.device), {}
        hidden, logs = self.weighted_hidden(hidden_all, b, weights)
        return adversarial, hidden, logs

    def _detail_diversity(self, inputs: torch.Tensor, fake: torch.Tensor, original: torch.Tensor, t: int
                          ) -> torch.Tensor:
        """losses.detail_diversity between G(z, n) and G(z, n′), n′ a second draw seeded by (seed, step, rank)."""
        c, rt = self.config, self.runtime
        p = inputs.shape[1] - c.noise_dim
        g = torch.Generator().manual_seed(c.seed * 1_000_003 + 17 * t + 104_729 * rt.rank + 4)
        other = torch.randn(inputs.shape[0], c.noise_dim, generator=g).to(inputs.device)
        with self.runtime.autocast():
            second = self.wrapped["generator"](torch.cat([inputs[:, :p], other], dim=1),
                                               self.noise_maps(inputs.shape[0], t))
        return losses.detail_diversity(fake, second, original, c.pixel_pool)

    def _detail_adversarial(self, original: torch.Tensor, fake: torch.Tensor, z: torch.Tensor, t: int
                            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Update the detail discriminator on (X_orig, G(z)) block detail, then its non-saturating loss on G(z).

        Why a second D: the main one sees whole cells, whose layout the pixel loss already fixes; this one sees
        only what each pixel adds to its block mean, where puncta and fibres live, so it can demand them (and,
        with a projection, demand the ones that go with the features).
        """
        c = self.config
        real_detail = losses.block_detail(original, c.pixel_pool)
        fake_detail = losses.block_detail(fake, c.pixel_pool)
        condition = torch.cat([z, z]) if c.projection_discriminator else None
        logs = self.discriminator_step(real_detail, fake_detail, t, condition, key="detail_discriminator",
                                       suffix="_detail")
        disc, b = self.nets["detail_discriminator"], original.shape[0]
        args = (condition,) if condition is not None else ()
        with frozen(disc), self.runtime.autocast():  # real and generated in one pass, as in D's update (BN)
            logits, _ = disc(torch.cat([real_detail, fake_detail]), *args)
        return losses.generator_nonsaturating(logits[b:]), logs

    def step(self, batch: dict[str, torch.Tensor], t: int) -> dict[str, torch.Tensor]:
        c = self.config
        original, real = self.images(batch, "images"), self.images(batch, "real")
        z = batch["features"].to(self.runtime.device, non_blocking=True)
        critic_on = self.critic is not None and t >= c.consistency_start
        editing = critic_on and self.coupling is not None
        b = z.shape[0]
        noise = self.noise(b, t)
        if editing:
            z_edit, j, _ = self._edits(z, t)
            inputs = torch.cat([z, z_edit])
            if noise is not None:
                inputs = torch.cat([inputs, torch.cat([noise, noise])], dim=1)  # an edit pair shares its noise
            with self.runtime.autocast():
                both = self.wrapped["generator"](inputs, self.noise_maps(b, t, pairs=True))  # (2b, 3, H, W), one BN batch
            fake, fake_edit = both[:b], both[b:]
        else:
            inputs = z if noise is None else torch.cat([z, noise], dim=1)
            with self.runtime.autocast():
                fake = self.wrapped["generator"](inputs, self.noise_maps(b, t))  # (b, 3, H, W) in [0, 1]
            fake_edit = None
        adversarial_edit = editing and c.edit_adversarial_weight > 0
        if c.projection_discriminator:
            # real pairs: the generator's targets with their own features (the real batch has none)
            condition = torch.cat([z, z, z_edit] if adversarial_edit else [z, z])
            logs = self.discriminator_step(original, torch.cat([fake, fake_edit]) if adversarial_edit else fake,
                                           t, condition)
        else:
            logs = self.discriminator_step(real, torch.cat([fake, fake_edit]) if adversarial_edit else fake, t)
        opt = self.optimizers["generator"]
        opt.zero_grad(set_to_none=True)
        mse = losses.pixel_mse(fake, original, c.pixel_pool)
        adversarial, hidden, hidden_logs = self._adversarial_and_hidden(original, fake, z, t)
        loss = mse + hidden
        extra: dict[str, torch.Tensor] = {}
        if c.adversarial_weight > 0:
            loss = loss + c.adversarial_weight * adversarial
            extra["adversarial"] = adversarial.detach()
        if c.detail_adversarial_weight > 0:
            detail, detail_logs = self._detail_adversarial(original, fake, z, t)
            loss = loss + c.detail_adversarial_weight * detail
            extra.update({"detail_adversarial": detail.detach(), **detail_logs})
        if c.diversity_weight > 0:
            diversity = self._detail_diversity(inputs[:b], fake, original, t)
            loss = loss + c.diversity_weight * diversity
            extra["diversity"] = diversity.detach()
        if c.texture_weight > 0:
            texture = texture_loss(fake, original)
            loss = loss + c.texture_weight * texture
            extra["texture"] = texture.detach()
        if critic_on:
            with self.runtime.autocast():
                pred = self.critic(torch.cat([fake, fake_edit]) if editing else fake).float()  # (b or 2b, k + a)
            consistency = self.critic.consistency_loss(pred[:b], z)  # angles on their period
            loss = loss + c.consistency_weight * consistency
            extra["consistency"] = consistency.detach()
            if editing:
                requested = (z_edit - z)[:, self.critic.select]
                edit = self.critic.edit_loss(pred[b:], pred[:b], requested, self.critic_position[j])
                loss = loss + c.edit_weight * edit
                extra["edit"] = edit.detach()
                if adversarial_edit:
                    disc = self.nets["discriminator"]
                    args = (z_edit,) if c.projection_discriminator else ()
                    with frozen(disc), self.runtime.autocast():
                        logits, _ = disc(fake_edit, *args)
                    adv = losses.generator_nonsaturating(logits)
                    loss = loss + c.edit_adversarial_weight * adv
                    extra["edit_adversarial"] = adv.detach()
        loss.backward()
        opt.step()
        return {"loss_g": loss.detach(), "mse": mse.detach(), "loss_hidden": hidden.detach(), **extra, **logs,
                **hidden_logs}

    @torch.no_grad()
    def preview(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        net = self.nets["generator"]
        return net.generate_from_normalised(batch["features"].numpy())


class VAEObjective(Objective):
    """ELBO up to constants: MSE + kl_weight · KL / n_pixels."""

    kind = "vae"
    generator_key = "vae"
    model_class: type[VAE] = VAE

    def __init__(self, config: TrainConfig, runtime: Runtime, model_config: VAEConfig) -> None:
        super().__init__(config, runtime)
        self.nets["vae"] = self.model_class(model_config)

    def reconstruction(self, original: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with self.runtime.autocast():
            recon, mu, logvar = self.wrapped["vae"](original)
        mse = losses.pixel_mse(recon, original)
        kl = losses.gaussian_kl(mu, logvar)
        n_pixels = original[0].numel()
        return recon, {"mse": mse, "kl": kl, "loss_vae": mse + self.config.kl_weight * kl / n_pixels}

    def step(self, batch: dict[str, torch.Tensor], t: int) -> dict[str, torch.Tensor]:
        original = self.images(batch, "images")
        opt = self.optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        _, terms = self.reconstruction(original)
        terms["loss_vae"].backward()
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def preview(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        return self.nets["vae"].reconstruct(batch["images"].numpy())


class VAEplusObjective(VAEObjective):
    """VAE loss + Σ γ_i hidden-layer losses, against a discriminator trained on real vs reconstruction."""

    kind = "vaeplus"
    model_class = VAEplus

    def __init__(self, config: TrainConfig, runtime: Runtime, model_config: VAEConfig) -> None:
        super().__init__(config, runtime, model_config)
        self.nets["discriminator"] = self.discriminator(model_config.image_size, len(model_config.channels))

    def step(self, batch: dict[str, torch.Tensor], t: int) -> dict[str, torch.Tensor]:
        original, real = self.images(batch, "images"), self.images(batch, "real")
        opt = self.optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        recon, terms = self.reconstruction(original)
        logs = self.discriminator_step(real, recon, t)
        hidden, hidden_logs = self.hidden_loss(original, recon, t)
        loss = terms["loss_vae"] + hidden
        loss.backward()
        opt.step()
        return {"loss_g": loss.detach(), **{k: v.detach() for k, v in terms.items()},
                "loss_hidden": hidden.detach(), **logs, **hidden_logs}


class LSGANObjective(Objective):
    """Unconditional least-squares GAN from noise (CytoGAN-style)."""

    kind = "lsgan"
    generator_key = "generator"

    def __init__(self, config: TrainConfig, runtime: Runtime, model_config: LSGANConfig) -> None:
        super().__init__(config, runtime)
        self.nets["generator"] = LSGAN(model_config)
        self.nets["discriminator"] = self.discriminator(model_config.image_size, len(model_config.channels))

    def noise(self, n_local: int, t: int) -> torch.Tensor:
        """Global-batch noise seeded by step; each rank takes its share (rank::world)."""
        rt = self.runtime
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + t)
        z = torch.randn(n_local * rt.world_size, self.config.latent_dim, generator=g)
        return z[rt.rank::rt.world_size].to(rt.device)

    def step(self, batch: dict[str, torch.Tensor], t: int) -> dict[str, torch.Tensor]:
        real = self.images(batch, "real")
        with self.runtime.autocast():
            fake = self.wrapped["generator"](self.noise(real.shape[0], t))
        opt_d = self.optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        with self.runtime.autocast():
            scores, _ = self.wrapped["discriminator"](torch.cat([real, fake.detach()]))
        b = real.shape[0]
        loss_d = losses.lsgan_discriminator(scores[:b], scores[b:])
        loss_d.backward()
        opt_d.step()
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        disc = self.nets["discriminator"]
        with frozen(disc), self.runtime.autocast():
            fake_scores, _ = disc(fake)
        loss_g = losses.lsgan_generator(fake_scores)
        loss_g.backward()
        opt_g.step()
        return {"loss_g": loss_g.detach(), "loss_d": loss_d.detach()}

    @torch.no_grad()
    def preview(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        return self.nets["generator"].sample(len(batch["images"]), seed=self.config.seed)


OBJECTIVES: dict[str, type[Objective]] = {
    "cp2image": CP2ImageObjective,
    "vae": VAEObjective,
    "vaeplus": VAEplusObjective,
    "lsgan": LSGANObjective,
}

"""The adversarial families: one G, one D, and the update rule they share.

`GAN.train_step` is today's D-then-G iteration: `n_critic` discriminator updates, then one
generator update (reusing the last generated batch unless train.reuse_fake=false), with the
loss's penalties, the model's extra loss terms, augmentation of all D sees, and every speed and
safety option the `StepContext` carries. Subclasses change what they sample or how D judges,
never the loop.

Families whose objective has terms beyond the adversarial loss (an auxiliary classifier, a
mutual-information term, feature matching) return them, by name, from `d_extra_loss` and
`g_extra_loss`; the step adds them to the networks' losses and logs each one. A discriminator
with extra heads (class logits, a Q network) returns them from `judge` beside the score of the
same forward pass, so the extra terms cost no second pass through D.

With `pack` > 1 (PacGAN), `discriminate` concatenates each run of `pack` consecutive samples
along the first data axis, so D scores groups and returns N / pack scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from gancli.data.base import DataInfo
from gancli.errors import ConfigError, GanError
from gancli.models.family import Family


@dataclass
class Judged:
    """A batch the discriminator has scored: samples, their labels (None when unconditional),
    the latents that made them (generated samples only), D's raw scores and its other outputs
    of the same forward pass (`heads`, by name)."""

    x: torch.Tensor
    y: torch.Tensor | None
    score: torch.Tensor
    z: torch.Tensor | None = None
    heads: dict[str, torch.Tensor] = field(default_factory=dict)


class GAN(Family):
    # Weight of the adversarial term in G's loss; a family whose G learns from another signal
    # (SGAN's feature matching) lowers it.
    g_adversarial_weight: float = 1.0
    path_length: bool = False  # whether loss.pl_weight applies (StyleGAN2's styles)
    default_metric = "d_loss"
    group_names = {"d": "discriminator", "g": "generator"}

    def __init__(self, G: nn.Module, D: nn.Module, z_dim: int, info: DataInfo, pack: int = 1):
        super().__init__(info)
        self.G, self.D, self.z_dim, self.pack = G, D, z_dim, pack
        self.batch_multiple, self.batch_multiple_reason = pack, f"model.pack={pack}"

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        # D first: it updates first, and a NaN in both at one step is reported as D's
        return {"d": list(self.D.parameters()), "g": list(self.G.parameters())}

    def logged_terms(self) -> set[str]:
        return {"d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g",
                "d_penalty", "g_penalty"}

    def sample_latent(self, n, device, generator=None):
        return self.randn(n, self.z_dim, device=device, generator=generator)

    def generate(self, z, y=None, G=None):
        return (G or self.G)(z)

    def judge(self, x: torch.Tensor, y: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(raw scores, D's other outputs by name) from one pass; families with heads
        override this."""
        x = self.pack_samples(x)
        return self.D(x).reshape(x.shape[0], -1).mean(dim=1), {}

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """One raw score (logit / critic value) per sample, shape (N,); per pack of samples,
        shape (N / pack,), when packing."""
        return self.judge(x, y)[0]

    def pack_samples(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, ...) -> (N / pack, pack * C, ...): sample i of a pack is channels i*C..(i+1)*C."""
        if self.pack == 1:
            return x
        if x.shape[0] % self.pack:
            raise GanError(f"a batch of {x.shape[0]} cannot be split into packs of {self.pack}; "
                           f"make train.batch_size a multiple of model.pack")
        return x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])

    # --- hooks for model families with labels, codes or extra heads (no-ops here) ----------

    def d_extra_loss(self, real: Judged, fake: Judged) -> dict[str, torch.Tensor]:
        """Named terms added to D's loss (an auxiliary classifier's, a Q head's)."""
        return {}

    def g_extra_loss(self, fake: Judged) -> dict[str, torch.Tensor]:
        """Named terms added to G's loss."""
        return {}

    def head(self, judged: Judged, name: str) -> torch.Tensor:
        """D's output `name` for a judged batch: the one judged with it, or, when the caller
        scored the batch some other way, from a second pass through D."""
        heads = judged.heads if name in judged.heads else self.judge(judged.x, judged.y)[1]
        return heads[name]

    # --- the update rule ------------------------------------------------------------------

    def _generate_batch(self, n: int, device):
        """(samples, their labels or None, the latents that made them)."""
        y = self.sample_labels(n, device)
        z = self.sample_latent(n, device)
        return self.generate(z, y), y, z

    def judged(self, x, y, z=None) -> Judged:
        """`x` (with labels `y`, made from latents `z`) judged by D."""
        score, heads = self.judge(x, y)
        return Judged(x, y, score, z, heads)

    def train_step(self, ctx, batches, step, stats):
        if ctx.loss.reg.pl_weight and not self.path_length:
            raise ConfigError(f"loss.pl_weight is StyleGAN2's path-length regulariser, and "
                              f"model {type(self).__name__} has no style mapping; use "
                              f"model=stylegan2, or loss.pl_weight=0")
        skipped, fake, o = 0, None, ctx.options
        for i in range(o.n_critic):
            real, y = next(batches)
            last = i == o.n_critic - 1
            d_index = (step - 1) * o.n_critic + i  # counts D updates: lazy regularisation
            applied, fake = self._d_update(ctx, ctx.real(real), y, step, d_index,
                                           stats if last else None, o.reuse_fake and last)
            skipped += not applied
        skipped += not self._g_update(ctx, step, stats, fake)
        return skipped

    def _d_update(self, ctx, real, y, step, d_index, stats, keep_fake):
        with torch.set_grad_enabled(keep_fake), ctx.autocast():
            fake, y_fake, z = self._generate_batch(real.shape[0], ctx.device)
        with ctx.autocast():
            seen_real, seen_fake = ctx.augment(real), ctx.augment(fake.detach())
            real_j, fake_j = self.judged(seen_real, y), self.judged(seen_fake, y_fake, z)
            d_loss = ctx.loss.d_loss(real_j.score.float(), fake_j.score.float())
            ctx.observe_real(real_j.score)  # train.augment_p=ada reads D's overfitting here
            extra = self.d_extra_loss(real_j, fake_j)
        with ctx.fp32():
            penalty = ctx.loss.d_penalty(self, real_j.x.float(), fake_j.x.float(), y, d_index)
        total = d_loss if penalty is None else d_loss + penalty
        total = sum((term.float() for term in extra.values()), total)
        applied = ctx.update(total, "d", step, stats)
        if stats is not None:
            stats.update(d_loss=d_loss.item(), d_real=real_j.score.float().mean().item(),
                         d_fake=fake_j.score.float().mean().item())
            stats.update({name: term.item() for name, term in extra.items()})
            if penalty is not None:
                stats["d_penalty"] = penalty.item()
        if applied:
            ctx.loss.after_d_step(self)
        return applied, ((fake, y_fake, z) if keep_fake else None)

    def _g_update(self, ctx, step, stats, generated) -> bool:
        if ctx.options.freeze_d:  # no weight gradients for D during G's update
            self.D.requires_grad_(False)
        try:
            with ctx.autocast():
                fake, y_fake, z = generated or self._generate_batch(ctx.options.batch_size,
                                                                    ctx.device)
                fake_j = self.judged(ctx.augment(fake), y_fake, z)
                g_loss = ctx.loss.g_loss(fake_j.score.float())
                extra = self.g_extra_loss(fake_j)
        finally:
            if ctx.options.freeze_d:
                self.D.requires_grad_(True)
        total = sum((term.float() for term in extra.values()), self.g_adversarial_weight * g_loss)
        with ctx.fp32():
            penalty = ctx.loss.g_penalty(self)  # loss.ortho: on G's weights alone
        if penalty is not None:
            total = total + penalty
        applied = ctx.update(total, "g", step, stats)
        if stats is not None:
            stats["g_loss"] = g_loss.item()
            if penalty is not None:
                stats["g_penalty"] = penalty.item()
            stats.update({name: term.item() for name, term in extra.items()})
        return applied

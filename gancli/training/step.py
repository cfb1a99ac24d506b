"""One training iteration: `n_critic` discriminator updates, then one generator update."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gancli.losses.base import GanLoss
from gancli.models.base import GAN, Judged
from gancli.training.distributed import finite_on_all_ranks, max_over_ranks


class NonFiniteLoss(Exception):
    def __init__(self, net: str, value: float | str, step: int | None = None):
        self.net, self.value, self.step = net, value, step
        super().__init__(f"{net} loss is {value}")


def grad_norm(module: torch.nn.Module) -> float:
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def clip_gradients(module: torch.nn.Module, max_norm: float | None) -> None:
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)


@dataclass
class StepOptions:
    n_critic: int = 1
    batch_size: int = 64  # this rank's share of the global batch
    max_grad_norm: float | None = None
    skip_nonfinite: bool = False  # train.nan_policy=skip
    amp_dtype: torch.dtype | None = None  # autocast dtype; None runs in fp32
    reuse_fake: bool = True  # G's update reuses the last D update's generated batch
    freeze_d: bool = False  # no weight gradients for D during G's update (CUDA, no DDP)
    channels_last: bool = False
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # on all D sees (DiffAugment)


class TrainStep:
    """Runs iterations and holds what must persist between them: the fp16 GradScalers and the
    first step a loss went non-finite (checked lazily, so the GPU never waits on the CPU)."""

    def __init__(self, gan: GAN, loss: GanLoss, opt_g: torch.optim.Optimizer,
                 opt_d: torch.optim.Optimizer, options: StepOptions, device: torch.device):
        self.gan, self.loss, self.opt_g, self.opt_d = gan, loss, opt_g, opt_d
        self.o, self.device = options, device
        fp16 = options.amp_dtype is torch.float16
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)
        self._bad = torch.zeros(2, dtype=torch.long, device=device)  # first bad step of D, G

    def _autocast(self):
        if self.o.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.o.amp_dtype)

    def _generate(self, n: int):
        """(samples, their labels or None, the latents that made them)."""
        y = self.gan.sample_labels(n, self.device)
        z = self.gan.sample_latent(n, self.device)
        return self.gan.generate(z, y), y, z

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return self.o.augment(x) if self.o.augment else x

    def _fp32(self):
        """Gradient penalties run in fp32: their input gradients underflow in half precision."""
        return torch.autocast(self.device.type, enabled=False)

    def __call__(self, batches, step: int, stats: dict | None = None) -> int:
        """One iteration; returns how many updates nan_policy=skip dropped."""
        skipped, fake = 0, None
        for i in range(self.o.n_critic):
            real, y = next(batches)
            if self.o.channels_last and real.dim() == 4:
                real = real.contiguous(memory_format=torch.channels_last)
            keep = self.o.reuse_fake and i == self.o.n_critic - 1
            last = i == self.o.n_critic - 1
            d_index = (step - 1) * self.o.n_critic + i  # counts D updates: lazy regularisation
            applied, fake = self._d_update(real, y, step, d_index, stats if last else None, keep)
            skipped += not applied
        skipped += not self._g_update(step, stats, fake)
        return skipped

    def _d_update(self, real, y, step, d_index, stats, keep_fake):
        gan = self.gan
        with torch.set_grad_enabled(keep_fake), self._autocast():
            fake, y_fake, z = self._generate(real.shape[0])
        with self._autocast():
            real, seen_fake = self._augment(real), self._augment(fake.detach())
            d_real = gan.discriminate(real, y)
            d_fake = gan.discriminate(seen_fake, y_fake)
            d_loss = self.loss.d_loss(d_real.float(), d_fake.float())
            # the raw scores: they carry D's extra heads, which .float() would drop
            extra = gan.d_extra_loss(Judged(real, y, d_real), Judged(seen_fake, y_fake, d_fake, z))
        with self._fp32():
            penalty = self.loss.d_penalty(gan, real.float(), seen_fake.float(), y, d_index)
        total = d_loss if penalty is None else d_loss + penalty
        total = sum((term.float() for term in extra.values()), total)
        applied = self._update(total, self.opt_d, self.scaler_d, gan.D, 0, step, stats, "d")
        if stats is not None:
            stats.update(d_loss=d_loss.item(), d_real=d_real.float().mean().item(),
                         d_fake=d_fake.float().mean().item())
            stats.update({name: term.item() for name, term in extra.items()})
            if penalty is not None:
                stats["d_penalty"] = penalty.item()
        if applied:
            self.loss.after_d_step(gan)
        return applied, ((fake, y_fake, z) if keep_fake else None)

    def _g_update(self, step, stats, generated) -> bool:
        gan = self.gan
        if self.o.freeze_d:
            gan.D.requires_grad_(False)
        try:
            with self._autocast():
                fake, y_fake, z = generated or self._generate(self.o.batch_size)
                seen_fake = self._augment(fake)
                d_fake = gan.discriminate(seen_fake, y_fake)
                g_loss = self.loss.g_loss(d_fake.float())
                extra = gan.g_extra_loss(Judged(seen_fake, y_fake, d_fake, z))
        finally:
            if self.o.freeze_d:
                gan.D.requires_grad_(True)
        total = sum((term.float() for term in extra.values()), gan.g_adversarial_weight * g_loss)
        applied = self._update(total, self.opt_g, self.scaler_g, gan.G, 1, step, stats, "g")
        if stats is not None:
            stats["g_loss"] = g_loss.item()
            stats.update({name: term.item() for name, term in extra.items()})
        return applied

    def _update(self, loss, opt, scaler, module, which: int, step: int, stats, name) -> bool:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # no-op without fp16; clipping and norms see true gradients
        if stats is not None:
            stats[f"grad_norm_{name}"] = grad_norm(module)
        clip_gradients(module, self.o.max_grad_norm)
        if self.o.skip_nonfinite:  # needs the answer now: one host sync per update
            if not finite_on_all_ranks(loss):
                opt.zero_grad(set_to_none=True)
                return False
        else:  # remember the first bad step on the device; check_finite() reports it
            bad = ~torch.isfinite(loss.detach())
            first = self._bad[which]
            self._bad[which] = torch.where(bad & (first == 0), step, first)
        scaler.step(opt)
        scaler.update()
        return True

    def check_finite(self) -> None:
        """Raise NonFiniteLoss naming the network and step of the first NaN/Inf loss. Called
        before anything is logged or saved: a host sync, so not every step."""
        d_step, g_step = max_over_ranks(self._bad).tolist()  # 0: none
        if d_step or g_step:
            d_first = d_step and (not g_step or d_step <= g_step)
            raise NonFiniteLoss("discriminator" if d_first else "generator", "NaN/Inf",
                                d_step if d_first else g_step)

    def state_dict(self) -> dict:
        return {"scaler_d": self.scaler_d.state_dict(), "scaler_g": self.scaler_g.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])

"""One discriminator update and one generator update."""

from __future__ import annotations

import torch

from gancli.losses.base import GanLoss
from gancli.models.base import GAN, Judged
from gancli.training.distributed import finite_on_all_ranks


class NonFiniteLoss(Exception):
    def __init__(self, net: str, value: float):
        self.net, self.value = net, value
        super().__init__(f"{net} loss is {value}")


def grad_norm(module: torch.nn.Module) -> float:
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def clip_gradients(module: torch.nn.Module, max_norm: float | None) -> None:
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)


def _apply(loss: torch.Tensor, opt: torch.optim.Optimizer, net: str, skip_nonfinite: bool) -> bool:
    """Step `opt` unless the loss is NaN/Inf: then skip the update, or raise NonFiniteLoss."""
    if finite_on_all_ranks(loss):  # under torchrun every rank decides alike
        opt.step()
        return True
    if not skip_nonfinite:
        raise NonFiniteLoss(net, loss.item())
    opt.zero_grad(set_to_none=True)
    return False


def discriminator_step(gan: GAN, loss: GanLoss, opt: torch.optim.Optimizer,
                       real: torch.Tensor, y: torch.Tensor | None,
                       stats: dict | None = None, skip_nonfinite: bool = False,
                       step: int = 0, max_grad_norm: float | None = None) -> bool:
    """Update D on one real batch and as many generated samples. Fills `stats` when given
    (gradient norms before clipping); returns whether the update was applied. `step` counts
    D updates, for lazy regularisation."""
    n, device = real.shape[0], real.device
    with torch.no_grad():
        y_fake = gan.sample_labels(n, device)
        z = gan.sample_latent(n, device)
        fake = gan.generate(z, y_fake)
    d_real, d_fake = gan.discriminate(real, y), gan.discriminate(fake, y_fake)
    d_loss = loss.d_loss(d_real, d_fake)
    extra = gan.d_extra_loss(Judged(real, y, d_real), Judged(fake, y_fake, d_fake, z))
    penalty = loss.d_penalty(gan, real, fake, y, step)
    total = sum(extra.values(), d_loss if penalty is None else d_loss + penalty)
    opt.zero_grad(set_to_none=True)
    total.backward()
    if stats is not None:
        stats.update(d_loss=d_loss.item(), d_real=d_real.mean().item(),
                     d_fake=d_fake.mean().item(), grad_norm_d=grad_norm(gan.D))
        stats.update({name: term.item() for name, term in extra.items()})
        if penalty is not None:
            stats["d_penalty"] = penalty.item()
    clip_gradients(gan.D, max_grad_norm)
    applied = _apply(total, opt, "discriminator", skip_nonfinite)
    if applied:
        loss.after_d_step(gan)
    return applied


def generator_step(gan: GAN, loss: GanLoss, opt: torch.optim.Optimizer, n: int,
                   device: torch.device, stats: dict | None = None,
                   skip_nonfinite: bool = False, max_grad_norm: float | None = None) -> bool:
    y_fake = gan.sample_labels(n, device)
    z = gan.sample_latent(n, device)
    fake = gan.generate(z, y_fake)
    d_fake = gan.discriminate(fake, y_fake)
    g_loss = loss.g_loss(d_fake)
    extra = gan.g_extra_loss(Judged(fake, y_fake, d_fake, z))
    total = sum(extra.values(), gan.g_adversarial_weight * g_loss)
    opt.zero_grad(set_to_none=True)
    total.backward()
    if stats is not None:
        stats.update(g_loss=g_loss.item(), grad_norm_g=grad_norm(gan.G))
        stats.update({name: term.item() for name, term in extra.items()})
    clip_gradients(gan.G, max_grad_norm)
    return _apply(total, opt, "generator", skip_nonfinite)

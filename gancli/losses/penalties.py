"""Gradient penalties on the discriminator, usable with every loss.

Both differentiate D's score with respect to its input (create_graph=True, so the penalty's own
gradient reaches D's weights). With packing, D scores groups of samples, so a norm is taken
over the whole group's input: the gradient D actually has. `gan` is any model with
`discriminate(x, y)`.
"""

from __future__ import annotations

import torch


def _input_gradients(gan, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """dD/dx flattened to one row per D input (per pack of samples)."""
    x = x.detach().requires_grad_(True)
    scores = gan.discriminate(x, y)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad.reshape(scores.shape[0], -1)


def gradient_penalty(gan, real: torch.Tensor, fake: torch.Tensor,
                     y: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on random points
    x_hat between real and generated samples."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    return (_input_gradients(gan, x_hat, y).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(gan, real: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[||grad D(x)||^2] on real data. The loss weighs it by
    gamma / 2."""
    return _input_gradients(gan, real, y).pow(2).sum(dim=1).mean()

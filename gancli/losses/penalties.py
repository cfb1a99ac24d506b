"""Gradient penalties on the discriminator, and the orthogonal regulariser of the generator's
weights, usable with every loss.

Both differentiate D's score with respect to its input (create_graph=True, so the penalty's own
gradient reaches D's weights). With packing, D scores groups of samples, so a norm is taken
over the whole group's input: the gradient D actually has. `gan` is any model with
`discriminate(x, y)`.
"""

from __future__ import annotations

import torch
from torch import nn

# layers whose weights the orthogonal regulariser sees (embeddings are lookup tables: their
# rows need not be orthogonal, and BigGAN leaves its shared class embedding out)
REGULARISED_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


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


def layer_weights(net: nn.Module) -> list[torch.Tensor]:
    """The weights of every linear and convolutional layer in `net`; for a spectrally
    normalised layer, the raw weight its normalised one is computed from."""
    weights = []
    for layer in net.modules():
        if isinstance(layer, REGULARISED_LAYERS):
            parametrized = getattr(layer, "parametrizations", None)
            weights.append(parametrized.weight.original if parametrized is not None
                           and "weight" in parametrized else layer.weight)
    return weights


def orthogonal_penalty(weights: list[torch.Tensor]) -> torch.Tensor:
    """BigGAN's off-diagonal orthogonal regulariser (Brock et al. 2019, eq. 3, without beta):
    the sum over weights W, each reshaped to (outputs, -1), of ||W W^T * (1 - I)||_F^2, which
    pushes the filters towards orthogonality without constraining their norms."""
    total = weights[0].new_zeros(())
    for w in weights:
        w = w.reshape(w.shape[0], -1)
        gram = w @ w.T
        total = total + (gram - torch.diag_embed(gram.diagonal())).pow(2).sum()
    return total

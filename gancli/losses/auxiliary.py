"""Loss terms beyond the adversarial one, for the families with labels and codes: the auxiliary
classifier (AC-GAN, SGAN's supervised loss), InfoGAN's mutual-information bound, and feature
matching (Salimans et al. 2016). Pure functions of tensors, each testable alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def class_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the items with a label; items labelled -1 (hidden by
    dataset.labeled) are left out, and a batch without labels gives 0."""
    labeled = y >= 0
    per_item = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
    return (per_item * labeled).sum() / labeled.sum().clamp(min=1)


def categorical_code_loss(logits: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """-E[log Q(c | x)] for a categorical code: InfoGAN's bound is
    I(c; G(z, c)) >= H(c) - this, so minimising it maximises the bound."""
    return F.cross_entropy(logits, code)


def continuous_code_loss(mean: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """-E[log Q(c | x)] for continuous codes under a unit-variance Gaussian Q, up to its
    constant: 1/2 (c - mu)^2, summed over the codes and averaged over the batch."""
    return 0.5 * (code - mean).pow(2).sum(dim=1).mean()


def feature_matching(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """|| E f(x) - E f(G(z)) ||^2 / dims: the squared distance between the mean discriminator
    features of real and generated batches, averaged over feature dimensions (Salimans et al.
    2016, eq. 4; their code takes the mean). `real_features` may already be a mean (1-D)."""
    real_mean = real_features if real_features.dim() == 1 else real_features.mean(dim=0)
    return (real_mean - fake_features.mean(dim=0)).pow(2).mean()

"""The G/D pair every model builder returns, and the seams the training loop calls.

The loop only calls `sample_latent`, `sample_labels`, `generate` and `discriminate`; a model
family that needs labels or codes overrides these (and nothing in the loop changes).
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.data.base import DataInfo


class GAN(nn.Module):
    def __init__(self, G: nn.Module, D: nn.Module, z_dim: int, info: DataInfo):
        super().__init__()
        self.G, self.D, self.z_dim, self.info = G, D, z_dim, info

    def sample_latent(self, n: int, device: torch.device,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=device, generator=generator)

    def sample_labels(self, n: int, device: torch.device,
                      generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Labels for generated samples; None for unconditional models."""
        return None

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None,
                 G: nn.Module | None = None) -> torch.Tensor:
        """Samples in data space; `G` may be another copy of the generator (the EMA one)."""
        return (G or self.G)(z)

    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """One raw score (logit / critic value) per sample, shape (N,)."""
        return self.D(x).reshape(x.shape[0], -1).mean(dim=1)

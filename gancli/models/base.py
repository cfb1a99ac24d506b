"""The G/D pair every model builder returns, and the seams the training loop calls.

The loop only calls `sample_latent`, `sample_labels`, `generate` and `discriminate`; a model
family that needs labels or codes overrides these (and nothing in the loop changes).

With `pack` > 1 (PacGAN), `discriminate` concatenates each run of `pack` consecutive samples
along the first data axis, so D scores groups and returns N / pack scores.
"""

from __future__ import annotations

import torch
from torch import nn

from gancli.data.base import DataInfo
from gancli.errors import GanError


class GAN(nn.Module):
    def __init__(self, G: nn.Module, D: nn.Module, z_dim: int, info: DataInfo, pack: int = 1):
        super().__init__()
        self.G, self.D, self.z_dim, self.info, self.pack = G, D, z_dim, info, pack

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
        """One raw score (logit / critic value) per sample, shape (N,); per pack of samples,
        shape (N / pack,), when packing."""
        x = self.pack_samples(x)
        return self.D(x).reshape(x.shape[0], -1).mean(dim=1)

    def pack_samples(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, ...) -> (N / pack, pack * C, ...): sample i of a pack is channels i*C..(i+1)*C."""
        if self.pack == 1:
            return x
        if x.shape[0] % self.pack:
            raise GanError(f"a batch of {x.shape[0]} cannot be split into packs of {self.pack}; "
                           f"make train.batch_size a multiple of model.pack")
        return x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])

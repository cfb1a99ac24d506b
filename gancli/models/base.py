"""The G/D pair every model builder returns, and the seams the training loop calls.

The loop only calls `sample_latent`, `sample_labels`, `generate` and `discriminate`; a model
family that needs labels or codes overrides these (and nothing in the loop changes).

Families whose objective has terms beyond the adversarial loss (an auxiliary classifier, a
mutual-information term, feature matching) return them, by name, from `d_extra_loss` and
`g_extra_loss`; the training step adds them to the networks' losses and logs each one. A
discriminator with extra heads (class logits, a Q network) returns them with the score from the
same forward pass, attached by `attach_heads`, so the extra terms cost no second pass through D.
`report` lets a family measure itself on held-out data (SGAN's test accuracy); the loop logs
what it returns next to the sample images.

With `pack` > 1 (PacGAN), `discriminate` concatenates each run of `pack` consecutive samples
along the first data axis, so D scores groups and returns N / pack scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gancli.data.base import DataInfo
from gancli.errors import ConfigError, GanError


@dataclass
class Judged:
    """A batch the discriminator has scored: samples, their labels (None when unconditional),
    the latents that made them (generated samples only) and D's scores, carrying any heads."""

    x: torch.Tensor
    y: torch.Tensor | None
    score: torch.Tensor
    z: torch.Tensor | None = None

    @property
    def heads(self) -> dict[str, torch.Tensor]:
        return heads_of(self.score)


def attach_heads(score: torch.Tensor, **heads: torch.Tensor) -> torch.Tensor:
    """Return `score` carrying D's other outputs of the same forward pass (see heads_of)."""
    score.heads = heads
    return score


def heads_of(score: torch.Tensor) -> dict[str, torch.Tensor]:
    """The outputs `attach_heads` put on a score tensor; {} for a plain one."""
    return getattr(score, "heads", {})


class GAN(nn.Module):
    # Weight of the adversarial term in G's loss; a family whose G learns from another signal
    # (SGAN's feature matching) lowers it.
    g_adversarial_weight: float = 1.0
    conditional: bool = False  # whether G draws samples of given classes (sample_labels not None)

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

    # --- hooks for model families with labels, codes or extra heads (no-ops here) ----------

    def d_extra_loss(self, real: Judged, fake: Judged) -> dict[str, torch.Tensor]:
        """Named terms added to D's loss (an auxiliary classifier's, a Q head's)."""
        return {}

    def g_extra_loss(self, fake: Judged) -> dict[str, torch.Tensor]:
        """Named terms added to G's loss."""
        return {}

    def head(self, judged: Judged, name: str) -> torch.Tensor:
        """D's output `name` for a judged batch: the one its score carries, or, when the caller
        scored the batch some other way, from a second pass through D."""
        heads = judged.heads
        if name not in heads:
            heads = heads_of(self.discriminate(judged.x, judged.y))
        return heads[name]

    def report(self, data) -> dict[str, float]:
        """Measurements of this model on `data` (a GanData, e.g. its held-out items), logged
        with each sample export."""
        return {}

    def code_names(self) -> list[str]:
        """Names of the latent codes `traversal` can vary ([] without codes)."""
        return []

    def traversal(self, code: str, rows: int, steps: int, device: torch.device,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Latents for a grid: one row per random latent, the code `code` running over `steps`
        values along each row while everything else is held."""
        raise ConfigError(f"traverse= needs a model with latent codes (model=infogan); model "
                          f"{type(self).__name__} has none")

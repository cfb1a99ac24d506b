"""The original GAN objective (Goodfellow et al. 2014) as binary cross-entropy on logits.

G minimises -log D(G(z)) (non-saturating, the default) or log(1 - D(G(z))) (`minimax=true`,
the form in the paper's value function, whose gradient vanishes when D wins).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from gancli.losses.base import GanLoss, RegularizerConfig
from gancli.registry import LOSSES


@dataclass
class GanLossConfig(RegularizerConfig):
    name: str = "gan"
    # G minimises log(1 - D(G(z))), the paper's minimax form, instead of -log D(G(z))
    minimax: bool = False


class BCEGanLoss(GanLoss):
    def __init__(self, minimax: bool = False, reg: RegularizerConfig | None = None):
        super().__init__(reg)
        self.minimax = minimax

    def d_loss(self, real, fake):
        # -log D(x) - log(1 - D(G(z))), with softplus for numerical stability
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def g_loss(self, fake):
        if self.minimax:
            return -F.softplus(fake).mean()  # log(1 - D(G(z))) = -softplus(fake)
        return F.softplus(-fake).mean()  # -log D(G(z))


@LOSSES.register("gan", GanLossConfig)
def build_gan_loss(cfg: GanLossConfig) -> BCEGanLoss:
    return BCEGanLoss(cfg.minimax, cfg)

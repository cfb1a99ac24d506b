"""Wasserstein GANs: D is a critic whose score difference estimates the Wasserstein-1 distance,
which needs D to be 1-Lipschitz.

- `wgan` (Arjovsky et al. 2017) keeps D Lipschitz by clipping every weight to [-clip, clip]
  after each update; the paper trains it with RMSProp (lr 5e-5) and 5 critic steps per G step:
  `+experiment=wgan`.
- `wgan-gp` (Gulrajani et al. 2017) replaces clipping with a gradient penalty of weight 10
  (`loss.gp`), again with 5 critic steps: `+experiment=wgan_gp`.

`loss.drift` (both) adds ProGAN's drift term drift * E[D(x)^2] on real images to the critic's
loss, which keeps its scores from wandering far from 0 (0.001 in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gancli.config import require_non_negative
from gancli.errors import ConfigError
from gancli.losses.base import GanLoss, RegularizerConfig
from gancli.registry import LOSSES


@dataclass
class WGANConfig(RegularizerConfig):
    name: str = "wgan"
    clip: float | None = 0.01  # weights of D are clamped to [-clip, clip]; null: no clipping
    drift: float = 0.0  # weight of ProGAN's drift term E[D(real)^2] in the critic's loss

    def __post_init__(self):
        super().__post_init__()
        if self.clip is not None and self.clip <= 0:
            raise ConfigError(f"loss.clip must be > 0 (or null for no clipping), got {self.clip}")
        require_non_negative("loss.drift", self.drift)


@dataclass
class WGANGPConfig(RegularizerConfig):
    name: str = "wgan-gp"
    gp: float = 10.0
    drift: float = 0.0  # weight of ProGAN's drift term E[D(real)^2] in the critic's loss

    def __post_init__(self):
        super().__post_init__()
        require_non_negative("loss.drift", self.drift)


class WassersteinLoss(GanLoss):
    def __init__(self, clip: float | None = None, reg: RegularizerConfig | None = None,
                 drift: float = 0.0):
        super().__init__(reg)
        self.clip, self.drift = clip, drift

    def d_loss(self, real, fake):
        loss = fake.mean() - real.mean()  # the critic maximises E[D(x)] - E[D(G(z))]
        return loss + self.drift * real.square().mean() if self.drift else loss

    def g_loss(self, fake):
        return -fake.mean()

    @torch.no_grad()
    def after_d_step(self, gan) -> None:
        if self.clip is not None:
            for p in gan.D.parameters():
                p.clamp_(-self.clip, self.clip)


@LOSSES.register("wgan", WGANConfig)
def build_wgan(cfg: WGANConfig) -> WassersteinLoss:
    return WassersteinLoss(cfg.clip, cfg, cfg.drift)


@LOSSES.register("wgan-gp", WGANGPConfig)
def build_wgan_gp(cfg: WGANGPConfig) -> WassersteinLoss:
    return WassersteinLoss(None, cfg, cfg.drift)

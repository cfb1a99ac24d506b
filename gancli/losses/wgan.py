"""Wasserstein GANs: D is a critic whose score difference estimates the Wasserstein-1 distance,
which needs D to be 1-Lipschitz.

- `wgan` (Arjovsky et al. 2017) keeps D Lipschitz by clipping every weight to [-clip, clip]
  after each update; the paper trains it with RMSProp (lr 5e-5) and 5 critic steps per G step:
  `+experiment=wgan`.
- `wgan-gp` (Gulrajani et al. 2017) replaces clipping with a gradient penalty of weight 10
  (`loss.gp`), again with 5 critic steps: `+experiment=wgan_gp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gancli.errors import ConfigError
from gancli.losses.base import GanLoss, RegularizerConfig
from gancli.registry import LOSSES


@dataclass
class WGANConfig(RegularizerConfig):
    name: str = "wgan"
    clip: float | None = 0.01  # weights of D are clamped to [-clip, clip]; null: no clipping

    def __post_init__(self):
        super().__post_init__()
        if self.clip is not None and self.clip <= 0:
            raise ConfigError(f"loss.clip must be > 0 (or null for no clipping), got {self.clip}")


@dataclass
class WGANGPConfig(RegularizerConfig):
    name: str = "wgan-gp"
    gp: float = 10.0


class WassersteinLoss(GanLoss):
    def __init__(self, clip: float | None = None, reg: RegularizerConfig | None = None):
        super().__init__(reg)
        self.clip = clip

    def d_loss(self, real, fake):
        return fake.mean() - real.mean()  # the critic maximises E[D(x)] - E[D(G(z))]

    def g_loss(self, fake):
        return -fake.mean()

    @torch.no_grad()
    def after_d_step(self, gan) -> None:
        if self.clip is not None:
            for p in gan.D.parameters():
                p.clamp_(-self.clip, self.clip)


@LOSSES.register("wgan", WGANConfig)
def build_wgan(cfg: WGANConfig) -> WassersteinLoss:
    return WassersteinLoss(cfg.clip, cfg)


@LOSSES.register("wgan-gp", WGANGPConfig)
def build_wgan_gp(cfg: WGANGPConfig) -> WassersteinLoss:
    return WassersteinLoss(None, cfg)

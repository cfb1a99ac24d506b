"""Least-squares GAN (Mao et al. 2017): D regresses real scores to `real_label` and generated
ones to `fake_label`; G pulls its scores to `g_target`. The defaults are the paper's 0-1 coding
(a=0, b=1, c=1); a=-1, b=1, c=0 gives the Pearson chi^2 form of its Theorem 1."""

from __future__ import annotations

from dataclasses import dataclass

from gancli.losses.base import GanLoss, RegularizerConfig
from gancli.registry import LOSSES


@dataclass
class LSGANConfig(RegularizerConfig):
    name: str = "lsgan"
    fake_label: float = 0.0  # a
    real_label: float = 1.0  # b
    g_target: float = 1.0  # c


class LeastSquaresLoss(GanLoss):
    def __init__(self, cfg: LSGANConfig):
        super().__init__(cfg)
        self.a, self.b, self.c = cfg.fake_label, cfg.real_label, cfg.g_target

    def d_loss(self, real, fake):
        return 0.5 * (real - self.b).pow(2).mean() + 0.5 * (fake - self.a).pow(2).mean()

    def g_loss(self, fake):
        return 0.5 * (fake - self.c).pow(2).mean()


@LOSSES.register("lsgan", LSGANConfig)
def build_lsgan(cfg: LSGANConfig) -> LeastSquaresLoss:
    return LeastSquaresLoss(cfg)

"""Hinge loss (Lim & Ye 2017; used by SNGAN, SAGAN, BigGAN): D is penalised only for real scores
below 1 and generated scores above -1; G raises D's score of its samples."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from gancli.losses.base import GanLoss, RegularizerConfig
from gancli.registry import LOSSES


@dataclass
class HingeConfig(RegularizerConfig):
    name: str = "hinge"


class HingeLoss(GanLoss):
    def d_loss(self, real, fake):
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, fake):
        return -fake.mean()


@LOSSES.register("hinge", HingeConfig)
def build_hinge(cfg: HingeConfig) -> HingeLoss:
    return HingeLoss(cfg)

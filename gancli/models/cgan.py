"""Class-conditional GAN with a projection discriminator (Miyato & Koyama 2018).

G(z, y): a backbone generator conditioned by class-conditional BatchNorm or a one-hot label
appended to z (model.g_conditioning). D(x, y) = score(phi(x)) + <embed(y), phi(x)>, where phi
is the backbone D's features and score its last layer. Works with every loss: they all see
D(x, y) as they see an unconditional D's score.

Real items whose label dataset.labeled hid (label -1) get no projection term: D judges them
unconditionally.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gancli.data.base import DataInfo
from gancli.models.backbone import finish_heads
from gancli.models.conditioning import (
    ConditionalGAN,
    ConditionalOptions,
    build_conditional_backbone,
)
from gancli.registry import MODELS


@dataclass
class CGANConfig(ConditionalOptions):
    name: str = "cgan"


class ProjectionDiscriminator(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.embed = nn.Embedding(num_classes, backbone.feature_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        features = self.backbone.features(x)
        score = self.backbone.score(features)
        if y is None:
            return score
        labeled = y >= 0
        projection = (self.embed(y.clamp(min=0)) * features).sum(dim=1)
        return score + projection * labeled


class CGAN(ConditionalGAN):
    def judge(self, x, y=None):
        return self.D(x, y), {}


@MODELS.register("cgan", CGANConfig)
def build_cgan(cfg: CGANConfig, info: DataInfo) -> CGAN:
    net, G = build_conditional_backbone(cfg, info, "cgan")
    D = ProjectionDiscriminator(net.D, info.num_classes)
    nn.init.xavier_uniform_(D.embed.weight)
    finish_heads(D.embed, net, cfg)
    return CGAN(G, D, net.z_dim, info)

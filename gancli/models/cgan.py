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
from gancli.models.backbone import (
    BackboneOptions,
    build_backbone,
    finish_heads,
    require_labels,
    require_single_samples,
    resolve_arch,
)
from gancli.models.conditioning import (
    ConditionalGAN,
    ConditionalGenerator,
    GConditioning,
    resolve_conditioning,
)
from gancli.registry import MODELS


@dataclass
class CGANConfig(BackboneOptions):
    name: str = "cgan"
    g_conditioning: GConditioning = GConditioning.auto


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
    def discriminate(self, x, y=None):
        return self.D(x, y)


@MODELS.register("cgan", CGANConfig)
def build_cgan(cfg: CGANConfig, info: DataInfo) -> CGAN:
    require_labels(info, "cgan")
    require_single_samples(cfg, "cgan")
    how = resolve_conditioning(cfg.g_conditioning, resolve_arch(cfg.arch, info))
    extra = info.num_classes if how is GConditioning.concat else 0
    net = build_backbone(cfg, info, extra_inputs=extra)
    G = ConditionalGenerator(net.G, info.num_classes, how)
    D = ProjectionDiscriminator(net.D, info.num_classes)
    nn.init.xavier_uniform_(D.embed.weight)
    finish_heads(D.embed, net, cfg)
    return CGAN(G, D, net.z_dim, info)

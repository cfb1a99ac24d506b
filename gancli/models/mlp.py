"""The fully connected GAN of Goodfellow et al. (2014), for 2D points and small images."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from gancli.data.base import DataInfo
from gancli.models.base import GAN
from gancli.models.init import Init
from gancli.models.options import ModelOptions, assemble
from gancli.registry import MODELS


@dataclass
class MLPConfig(ModelOptions):
    name: str = "mlp"
    z_dim: int = 64  # dimensions of G's input noise
    width_g: int = 256  # units of each of G's hidden layers
    width_d: int = 256  # units of each of D's hidden layers
    layers_g: int = 3  # hidden layers of G
    layers_d: int = 3  # hidden layers of D
    batchnorm_g: bool = False  # BatchNorm after each of G's hidden layers
    init: Init = Init.default


def _stack(sizes: list[int], act: nn.Module, batchnorm: bool = False) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers.append(nn.Linear(n_in, n_out))
        if batchnorm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(act)
    return layers


class MLPGenerator(nn.Module):
    def __init__(self, cfg: MLPConfig, info: DataInfo):
        super().__init__()
        self.shape = info.shape
        out = math.prod(info.shape)
        hidden = [cfg.z_dim] + [cfg.width_g] * cfg.layers_g
        head: list[nn.Module] = [nn.Linear(hidden[-1], out)]
        if info.kind == "image":
            head.append(nn.Tanh())  # images live in [-1, 1]; points are unbounded
        self.net = nn.Sequential(*_stack(hidden, nn.ReLU(), cfg.batchnorm_g), *head)

    def forward(self, z):
        return self.net(z).view(z.shape[0], *self.shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, cfg: MLPConfig, info: DataInfo, in_features: int | None = None):
        super().__init__()
        hidden = [in_features or math.prod(info.shape)] + [cfg.width_d] * cfg.layers_d
        self.net = nn.Sequential(*_stack(hidden, nn.LeakyReLU(0.2)), nn.Linear(hidden[-1], 1))
        self.feature_dim = hidden[-1]

    def forward(self, x):
        return self.net(x.flatten(1)).squeeze(1)

    def features(self, x):
        """What the last layer sees, (N, feature_dim): label-aware heads read it."""
        return self.net[:-1](x.flatten(1))

    def score(self, features):
        """The last layer on `features`: forward(x) == score(features(x))."""
        return self.net[-1](features).squeeze(1)


@MODELS.register("mlp", MLPConfig)
def build_mlp(cfg: MLPConfig, info: DataInfo) -> GAN:
    return assemble(cfg, info, MLPGenerator(cfg, info),
                    lambda d_info: MLPDiscriminator(cfg, d_info), cfg.z_dim)

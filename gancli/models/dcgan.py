"""DCGAN (Radford et al. 2016): transposed convolutions with BatchNorm and ReLU in G,
strided convolutions with LeakyReLU(0.2) in D, weights drawn from normal(0, 0.02).

Resolution and channels come from the dataset: 28 (starting from 7x7), 32 or 64 (from 4x4).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.base import GAN
from gancli.models.init import Init
from gancli.models.options import ImageDOptions, assemble, square_images
from gancli.registry import MODELS

BASE_SIZE = {28: 7, 32: 4, 64: 4}  # resolution -> spatial size of G's first feature map


@dataclass
class DCGANConfig(ImageDOptions):
    name: str = "dcgan"
    z_dim: int = 100  # dimensions of G's input noise
    width_g: int = 64  # channels of G's last hidden layer; doubled at each lower resolution
    width_d: int = 64  # channels of D's first layer; doubled at each stage
    init: Init = Init.dcgan


def _stages(resolution: int) -> int:
    if resolution not in BASE_SIZE:
        raise ConfigError(
            f"model dcgan supports resolutions {', '.join(map(str, BASE_SIZE))}, "
            f"got {resolution}; set dataset.resolution to one of them"
        )
    stages, size = 0, BASE_SIZE[resolution]
    while size < resolution:
        size, stages = size * 2, stages + 1
    return stages


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int, channels: int, resolution: int):
        super().__init__()
        stages, base = _stages(resolution), BASE_SIZE[resolution]
        ch = width * 2 ** (stages - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, base, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)
        ]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(self, width: int, channels: int, resolution: int):
        super().__init__()
        stages, base = _stages(resolution), BASE_SIZE[resolution]
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(stages - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2),
                       nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, base, 1, 0))  # one logit per image
        self.net = nn.Sequential(*layers)
        self.feature_shape = (ch, base, base)
        self.feature_dim = ch * base * base

    def forward(self, x):
        return self.net(x).flatten()

    def features(self, x):
        """What the last layer sees, flattened to (N, feature_dim): label-aware heads read it."""
        return self.net[:-1](x).flatten(1)

    def score(self, features):
        """The last layer on `features`: forward(x) == score(features(x))."""
        return self.net[-1](features.view(-1, *self.feature_shape)).flatten()


@MODELS.register("dcgan", DCGANConfig)
def build_dcgan(cfg: DCGANConfig, info: DataInfo) -> GAN:
    channels, height = square_images("dcgan", info)
    G = DCGANGenerator(cfg.z_dim, cfg.width_g, channels, height)
    return assemble(cfg, info, G,
                    lambda d_info: DCGANDiscriminator(cfg.width_d, d_info.shape[0], height),
                    cfg.z_dim)

"""The ResNet generator and discriminator of WGAN-GP (Gulrajani et al. 2017) and SNGAN (Miyato
et al. 2018), for 32x32 images (CIFAR-10), 48x48 (STL-10) and 64x64.

G: linear -> base x base map -> residual blocks that each double the size (BatchNorm, ReLU,
nearest upsampling, 3x3 convs, 1x1 conv shortcut) -> BatchNorm, ReLU, 3x3 conv, tanh.
D: residual blocks with average-pool downsampling and no normalisation (so a gradient penalty
or spectral norm applies cleanly) -> ReLU, sum over space, linear.

At 32x32 every block has the same width (`width_g` in G, `width_d` in D), as in both papers.
At 48 and 64, G halves its width at each block starting from `width_g` and D doubles it at each
block ending at `width_d`, as in the SNGAN STL-10 networks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gancli.config import require_positive
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.base import GAN
from gancli.models.init import Init
from gancli.models.options import ImageDOptions, assemble, square_images
from gancli.registry import MODELS

BASE_SIZE = {32: 4, 48: 6, 64: 4}  # resolution -> spatial size of G's first feature map


@dataclass
class ResNetConfig(ImageDOptions):
    name: str = "resnet"
    z_dim: int = 128  # dimensions of G's input noise
    width_g: int = 256  # channels of G's first block (SNGAN CIFAR-10: 256; WGAN-GP: 128)
    width_d: int = 128  # channels of D's last block
    init: Init = Init.xavier  # SNGAN's choice

    def __post_init__(self):
        super().__post_init__()
        for key in ("z_dim", "width_g", "width_d"):
            require_positive(f"model.{key}", getattr(self, key))


def _check_resolution(resolution: int) -> None:
    if resolution not in BASE_SIZE:
        raise ConfigError(
            f"model resnet supports resolutions {', '.join(map(str, BASE_SIZE))}, got "
            f"{resolution}; set dataset.resolution to one of them"
        )


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class GBlock(nn.Module):
    """Pre-activation residual block that doubles the spatial size."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        h = self.conv1(_upsample(F.relu(self.bn1(x))))
        h = self.conv2(F.relu(self.bn2(h)))
        return h + self.shortcut(_upsample(x))


class DBlock(nn.Module):
    """Pre-activation residual block, optionally halving the spatial size. The first block
    of D (`first=True`) has no activation before its first conv: its input is the image."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if (down or c_in != c_out) else None

    def forward(self, x):
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.first:  # pool first: the 1x1 conv then runs on a quarter of the pixels
            return h + self.shortcut(F.avg_pool2d(x, 2))
        skip = self.shortcut(x)
        return h + (F.avg_pool2d(skip, 2) if self.down else skip)


def generator_widths(width: int, resolution: int) -> list[int]:
    """Channels entering each G block, then leaving the last one."""
    blocks = _num_up_blocks(resolution)
    if resolution == 32:
        return [width] * (blocks + 1)
    return [max(width >> i, 1) for i in range(blocks + 1)]


def discriminator_widths(width: int, resolution: int) -> list[int]:
    """Channels leaving each D block."""
    if resolution == 32:
        return [width] * 4
    return [max(width >> i, 1) for i in reversed(range(5))]


def _num_up_blocks(resolution: int) -> int:
    size, blocks = BASE_SIZE[resolution], 0
    while size < resolution:
        size, blocks = size * 2, blocks + 1
    return blocks


class ResNetGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int, channels: int, resolution: int):
        super().__init__()
        widths = generator_widths(width, resolution)
        self.base, self.first_width = BASE_SIZE[resolution], widths[0]
        self.fc = nn.Linear(z_dim, self.base * self.base * widths[0])
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.blocks = nn.Sequential(*(GBlock(c_in, c_out) for c_in, c_out in pairs))
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(),
                                 nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh())

    def forward(self, z):
        h = self.fc(z.flatten(1)).view(z.shape[0], self.first_width, self.base, self.base)
        return self.out(self.blocks(h))


class ResNetDiscriminator(nn.Module):
    def __init__(self, width: int, channels: int, resolution: int):
        super().__init__()
        widths = discriminator_widths(width, resolution)
        # as in Mimicry's SNGAN nets: 32 -> 8x8 (two of four blocks halve the size),
        # 48 -> 3x3 (four of five), 64 -> 2x2 (all five)
        downs = {32: [True, True, False, False], 48: [True] * 4 + [False], 64: [True] * 5}
        blocks, c_in = [], channels
        for i, (c_out, down) in enumerate(zip(widths, downs[resolution], strict=True)):
            blocks.append(DBlock(c_in, c_out, down, first=i == 0))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, 1)
        self.feature_dim = c_in

    def forward(self, x):
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        return self.fc(h).flatten()

    def features(self, x):
        """What the last layer sees, (N, feature_dim): label-aware heads read it."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def score(self, features):
        """The last layer on `features`: forward(x) == score(features(x))."""
        return self.fc(features).flatten()


@MODELS.register("resnet", ResNetConfig)
def build_resnet(cfg: ResNetConfig, info: DataInfo) -> GAN:
    channels, height = square_images("resnet", info)
    _check_resolution(height)
    G = ResNetGenerator(cfg.z_dim, cfg.width_g, channels, height)
    return assemble(cfg, info, G,
                    lambda d_info: ResNetDiscriminator(cfg.width_d, d_info.shape[0], height),
                    cfg.z_dim)

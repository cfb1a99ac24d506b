"""BigGAN (Brock et al. 2019), after the reference code, ajbrock/BigGAN-PyTorch (BigGAN.py).

G: z (split into one chunk per block plus one for the first layer when `model.hier`) -> linear
-> bottom_width^2 map -> residual up-blocks (resnet.GBlock) whose BatchNorms are class-
conditional: scale and shift are linear maps of [shared class embedding | z chunk], the shared
embedding (`model.shared_dim`) being one table for all blocks -> BatchNorm, ReLU, 3x3 conv, tanh.
D: residual down-blocks (resnet.DBlock, the same block as BigGAN's), ReLU, sum over space,
then cgan's projection head: score(phi(x)) + <embed(y), phi(x)>.
Both: self-attention at one resolution (`model.attention`), spectral norm on every conv and
linear layer (G's shared embedding excepted, as in the reference), orthogonal initialisation.

Channel widths follow the reference's tables as multiples of `model.width_g` and
`model.width_d` (its G_ch and D_ch): 32x32 (CIFAR) keeps 4 * width everywhere; 64 and 128
halve G's width block by block from 16 * width_g and double D's up to 16 * width_d. 28x28
(MNIST) is this project's: the 32x32 table with one block fewer (7 -> 14 -> 28 in G,
28 -> 14 -> 7 in D).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gancli.config import require_positive
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.backbone import require_labels, require_single_samples
from gancli.models.cgan import CGAN, ProjectionDiscriminator
from gancli.models.conditioning import ConditionalBatchNorm, replace_batchnorms
from gancli.models.init import Init, init_weights
from gancli.models.options import ModelOptions, add_spectral_norm, square_images
from gancli.models.resnet import DBlock, GBlock
from gancli.registry import MODELS

ATTENTION = ("16", "32", "none")


@dataclass(frozen=True)
class Arch:
    """One resolution's networks: G's first map size and its blocks' channel multiples (in,
    then each block's out); D's blocks' out multiples and which of them halve the size."""

    bottom_width: int
    g_widths: tuple[int, ...]
    d_widths: tuple[int, ...]
    d_down: tuple[bool, ...]


ARCHS = {
    28: Arch(7, (4, 4, 4), (4, 4, 4), (True, True, False)),
    32: Arch(4, (4, 4, 4, 4), (4, 4, 4, 4), (True, True, False, False)),
    64: Arch(4, (16, 16, 8, 4, 2), (1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: Arch(4, (16, 16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16), (True,) * 5 + (False,)),
}


@dataclass
class BigGANConfig(ModelOptions):
    name: str = "biggan"
    z_dim: int = 128  # noise dims; with hier, rounded down to a multiple of (G blocks + 1)
    width_g: int = 64  # G's channel multiplier (the reference's G_ch): 4x this at 32x32
    width_d: int = 64  # D's channel multiplier (D_ch)
    shared_dim: int = 128  # size of the class embedding shared by all G blocks
    hier: bool = True  # z split into chunks: the first to G's input, one to each block's norms
    attention: str = "none"  # self-attention in G and D at this resolution: 16, 32 or none
    spectral_norm_g: bool = True  # spectral norm on G's convs and linears (not its embedding)
    spectral_norm_d: bool = True
    init: Init = Init.orthogonal  # the reference's default (its G_init / D_init 'ortho')

    def __post_init__(self):
        super().__post_init__()
        for key in ("z_dim", "width_g", "width_d", "shared_dim"):
            require_positive(f"model.{key}", getattr(self, key))
        self.attention = str(self.attention)
        if self.attention not in ATTENTION:
            raise ConfigError(f"model.attention must be one of {', '.join(ATTENTION)}, got "
                              f"'{self.attention}'")


class SelfAttention(nn.Module):
    """SAGAN's self-attention (Zhang et al. 2019) as BigGAN uses it: keys and values pooled
    2x2, x + gamma * attention(x) with gamma starting at 0, so a new block begins as the
    identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.query = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.key = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.value = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.out = nn.Conv2d(channels // 2, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        n, c, h, w = x.shape
        query = self.query(x).flatten(2)  # (n, c/8, hw)
        key = F.max_pool2d(self.key(x), 2).flatten(2)  # (n, c/8, hw/4)
        value = F.max_pool2d(self.value(x), 2).flatten(2)  # (n, c/2, hw/4)
        weights = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # (n, hw, hw/4)
        attended = (value @ weights.transpose(1, 2)).view(n, c // 2, h, w)
        return x + self.gamma * self.out(attended)


def attention_size(attention: str, sizes: list[int]) -> int | None:
    """The feature-map size that gets self-attention: the largest of `sizes` not above
    model.attention (so 16 means 14x14 on 28x28 digits, and D, whose first block halves the
    image, attends at 16x16 for attention=32 on 32x32 images); None for none."""
    if attention == "none":
        return None
    fitting = [s for s in sizes if s <= int(attention)]
    if not fitting:
        raise ConfigError(f"model.attention={attention}: no feature map of this network is "
                          f"that small (sizes {sorted(set(sizes))}); choose another or none")
    return max(fitting)


def latent_chunks(z_dim: int, blocks: int, hier: bool) -> tuple[int, int]:
    """(z dims used, dims of each chunk): with hier, z is cut into blocks + 1 equal chunks
    (the reference drops the remainder); without, one chunk of all of z."""
    if not hier:
        return z_dim, z_dim
    chunk = z_dim // (blocks + 1)
    if chunk == 0:
        raise ConfigError(f"model.z_dim={z_dim} is too small to give each of the "
                          f"{blocks + 1} hierarchical chunks a dimension; raise it or set "
                          f"model.hier=false")
    return chunk * (blocks + 1), chunk


class BigGANGenerator(nn.Module):
    def __init__(self, cfg: BigGANConfig, channels: int, resolution: int, num_classes: int):
        super().__init__()
        arch = ARCHS[resolution]
        widths = [m * cfg.width_g for m in arch.g_widths]
        blocks = len(widths) - 1
        self.hier, self.bottom_width = cfg.hier, arch.bottom_width
        self.z_dim, self.chunk = latent_chunks(cfg.z_dim, blocks, cfg.hier)
        self.shared = nn.Embedding(num_classes, cfg.shared_dim)
        condition_dim = cfg.shared_dim + (self.chunk if cfg.hier else 0)
        self.linear = nn.Linear(self.chunk, widths[0] * arch.bottom_width ** 2)
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleList()  # one per block: identity or self-attention
        sizes = [arch.bottom_width * 2 ** (i + 1) for i in range(blocks)]
        attend = attention_size(cfg.attention, sizes)
        for c_in, c_out, size in zip(widths[:-1], widths[1:], sizes, strict=True):
            block = GBlock(c_in, c_out)
            replace_batchnorms(block, num_classes, condition_dim)
            self.blocks.append(block)
            self.attention.append(SelfAttention(c_out) if size == attend else nn.Identity())
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(),
                                 nn.Conv2d(widths[-1], channels, 3, 1, 1), nn.Tanh())

    def conditions(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list]:
        """(G's input chunk, each block's norm condition) for latents z and labels y."""
        embedded = self.shared(y)
        if not self.hier:
            return z, [embedded] * len(self.blocks)
        first, *rest = torch.split(z, self.chunk, dim=1)
        return first, [torch.cat([embedded, chunk], dim=1) for chunk in rest]

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        first, conditions = self.conditions(z, y)
        h = self.linear(first).view(z.shape[0], -1, self.bottom_width, self.bottom_width)
        for block, attention, condition in zip(self.blocks, self.attention, conditions,
                                               strict=True):
            norms = [m for m in block.modules() if isinstance(m, ConditionalBatchNorm)]
            for norm in norms:  # resnet.GBlock calls its norms with x alone
                norm.condition = condition
            try:
                h = attention(block(h))
            finally:
                for norm in norms:
                    norm.condition = None
        return self.out(h)


class BigGANDiscriminator(nn.Module):
    """The trunk of D: features(x) (N, feature_dim) and score(features) (N,), as cgan's
    projection head needs."""

    def __init__(self, cfg: BigGANConfig, channels: int, resolution: int):
        super().__init__()
        arch = ARCHS[resolution]
        sizes, size = [], resolution
        for down in arch.d_down:
            size //= 2 if down else 1
            sizes.append(size)
        attend = attention_size(cfg.attention, sizes)
        layers, c_in = [], channels
        for i, (multiple, down) in enumerate(zip(arch.d_widths, arch.d_down, strict=True)):
            c_out = multiple * cfg.width_d
            layers.append(DBlock(c_in, c_out, down, first=i == 0))
            if sizes[i] == attend and sizes.index(attend) == i:  # once, at its first map
                layers.append(SelfAttention(c_out))
            c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, 1)
        self.feature_dim = c_in

    def features(self, x):
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def score(self, features):
        return self.fc(features).flatten()

    def forward(self, x):
        return self.score(self.features(x))


class BigGAN(CGAN):
    """cgan's update and sampling (uniform labels, projection D), BigGAN's networks."""

    def __init__(self, G: BigGANGenerator, D: nn.Module, info: DataInfo):
        super().__init__(G, D, G.z_dim, info)


@MODELS.register("biggan", BigGANConfig)
def build_biggan(cfg: BigGANConfig, info: DataInfo) -> BigGAN:
    require_labels(info, "biggan")
    require_single_samples(cfg, "biggan")
    channels, size = square_images("biggan", info)
    if size not in ARCHS:
        raise ConfigError(f"model biggan supports resolutions {', '.join(map(str, ARCHS))}, "
                          f"got {size}; set dataset.resolution to one of them")
    G = BigGANGenerator(cfg, channels, size, info.num_classes)
    D = ProjectionDiscriminator(BigGANDiscriminator(cfg, channels, size), info.num_classes)
    for net in (G, D):
        init_weights(net, cfg.init)
        for layer in net.modules():  # the reference initialises embeddings as the weights
            if isinstance(layer, nn.Embedding) and cfg.init is Init.orthogonal:
                nn.init.orthogonal_(layer.weight)
            elif isinstance(layer, nn.Embedding) and cfg.init is Init.dcgan:
                nn.init.normal_(layer.weight, 0.0, 0.02)
    if cfg.spectral_norm_g:
        add_spectral_norm(G)  # convs and linears: the shared embedding stays as it is
    if cfg.spectral_norm_d:
        add_spectral_norm(D)
        spectral_norm(D.embed)  # as the reference's SNEmbedding
    return BigGAN(G, D, info)

"""The keys every model config shares, and the one function every builder ends with.

`ModelOptions` is the base dataclass of each model's config, so `model.init`, `model.pack` and
`model.spectral_norm_d` mean the same thing for every architecture. `assemble` applies them:
it builds D for packed inputs, initialises both networks (or gives them an equalized learning
rate), then adds spectral norm to D. A model
builder makes G, says how to make D for a given input shape, and calls `assemble`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.base import GAN
from gancli.models.init import Init, init_weights
from gancli.models.layers import WEIGHTED_LAYERS, add_equalized_lr


@dataclass
class ModelOptions:
    init: Init = Init.default  # weight initialisation of G and D; see gancli/models/init.py
    pack: int = 1  # PacGAN (Lin et al. 2018): D judges this many samples at once
    spectral_norm_d: bool = False  # Miyato et al. 2018: each of D's weights divided by sigma
    # Karras et al. 2018: weights stored as N(0, 1), scaled at run time by He's constant, in G
    # and D (replaces model.init)
    equalized_lr: bool = False

    def __post_init__(self):
        if self.pack < 1:
            raise ConfigError(f"model.pack must be >= 1, got {self.pack}")


def square_images(model: str, info: DataInfo) -> tuple[int, int]:
    """(channels, size) of the square images a convolutional model needs, or a clear error."""
    if info.kind != "image":
        raise ConfigError(f"model {model} needs image data; dataset {info.name} is {info.kind}")
    channels, height, width = info.shape
    if height != width:
        raise ConfigError(f"model {model} needs square images, got {height}x{width}")
    return channels, height


def packed_info(info: DataInfo, pack: int) -> DataInfo:
    """The input D sees when `pack` samples are concatenated along the first data axis
    (channels for images, coordinates for points), as PacGAN does."""
    return replace(info, shape=(info.shape[0] * pack, *info.shape[1:]))


def add_spectral_norm(module: nn.Module) -> nn.Module:
    for layer in list(module.modules()):
        if isinstance(layer, WEIGHTED_LAYERS):
            spectral_norm(layer)
    return module


def assemble(cfg: ModelOptions, info: DataInfo, G: nn.Module,
             make_d: Callable[[DataInfo], nn.Module], z_dim: int) -> GAN:
    """Apply the shared options: D built for packed input, init or equalized learning rate,
    then spectral norm (which wraps the initialised weight, so it must come last)."""
    D = make_d(packed_info(info, cfg.pack))
    for net in (G, D):
        init_weights(net, cfg.init)  # norm layers too, which equalized_lr leaves alone
        if cfg.equalized_lr:
            add_equalized_lr(net)
    if cfg.spectral_norm_d:
        add_spectral_norm(D)
    return GAN(G, D, z_dim, info, pack=cfg.pack)

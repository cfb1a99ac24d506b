"""The keys every model config shares, and the one function every builder ends with.

`ModelOptions` is the base dataclass of each model's config, so `model.init`, `model.pack` and
`model.spectral_norm_d` mean the same thing for every architecture. `assemble` applies them:
it builds D for packed inputs, initialises both networks (or gives them an equalized learning
rate), then adds spectral norm to D. A model
builder makes G, says how to make D for a given input shape, and calls `assemble`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

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


class DArch(Enum):
    own = "own"  # the model's own discriminator
    patchgan = "patchgan"  # the translators' PatchGAN: scores patches, averaged per image


@dataclass
class ImageDOptions(ModelOptions):
    """The keys of the unconditional image GANs whose D may be swapped for a PatchGAN."""

    d_arch: DArch = DArch.own  # own | patchgan (gancli/models/translation.py)
    d_layers: int = 3  # d_arch=patchgan: stride-2 layers (3: 70x70 patches; 0: pixel GAN)

    def __post_init__(self):
        super().__post_init__()
        if self.d_layers < 0:
            raise ConfigError(f"model.d_layers must be >= 0 (0 is the pixel GAN), "
                              f"got {self.d_layers}")


def square_images(model: str, info: DataInfo) -> tuple[int, int]:
    """(channels, size) of the square images a convolutional model needs, or a clear error."""
    if info.kind != "image":
        raise ConfigError(f"model {model} needs image data; dataset {info.name} is {info.kind}")
    channels, height, width = info.shape
    if height != width:
        raise ConfigError(f"model {model} needs square images, got {height}x{width}")
    return channels, height


def doubling_images(model: str, info: DataInfo) -> tuple[int, int]:
    """(channels, size) for a model built from 4x4 by doublings (ProGAN, StyleGAN2): square
    images of a power-of-two size >= 8, or a clear error."""
    channels, size = square_images(model, info)
    if size < 8 or 2 ** round(math.log2(size)) != size:
        raise ConfigError(f"model {model} builds up from 4x4 by doublings, so it needs a "
                          f"power-of-two resolution >= 8, got {size}; set dataset.resolution "
                          f"(e.g. 32)")
    return channels, size


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
    """Apply the shared options: D built for packed input (or the PatchGAN), init or equalized
    learning rate, then spectral norm (which wraps the initialised weight, so it must come
    last)."""
    if getattr(cfg, "d_arch", DArch.own) is DArch.patchgan:
        from gancli.models.translation import PatchDiscriminator, patch_output_side

        side = square_images("with model.d_arch=patchgan", info)[1]
        if patch_output_side(side, cfg.d_layers) < 1:
            raise ConfigError(f"model.d_layers={cfg.d_layers} is too deep for {side}-pixel "
                              f"images; lower model.d_layers")
        # GAN.judge averages the map of patch scores into one score per image
        D = PatchDiscriminator(info.shape[0] * cfg.pack, cfg.width_d, cfg.d_layers)
    else:
        D = make_d(packed_info(info, cfg.pack))
    for net in (G, D):
        init_weights(net, cfg.init)  # norm layers too, which equalized_lr leaves alone
        if cfg.equalized_lr:
            add_equalized_lr(net)
    if cfg.spectral_norm_d:
        add_spectral_norm(D)
    return GAN(G, D, z_dim, info, pack=cfg.pack)

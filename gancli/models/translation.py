"""The networks and the family base shared by the image-to-image translators (CycleGAN,
pix2pix), after Zhu et al. 2017 and Isola et al. 2017 (junyanz/pytorch-CycleGAN-and-pix2pix).

Generators (`model.g_arch`):
- `resnet9` / `resnet6`: 7x7 conv, two stride-2 downsamplings, 9 or 6 residual blocks, two
  stride-2 transposed convolutions, 7x7 conv, tanh; reflection padding, instance norm. Sides
  must be multiples of 4.
- `unet`: the U-Net of pix2pix, 4x4 stride-2 convolutions down and transposed convolutions up
  with skip connections; as deep as the size allows (at most `unet_depth` levels; each level
  halves the side, so the side must be a multiple of 2^depth).

Discriminators: the PatchGAN (`d_layers` = n >= 1 stride-2 4x4 convolutions then two stride-1
ones: n = 3 is the 70x70 PatchGAN) scores overlapping patches; `d_layers` = 0 is the pixel GAN
(1x1 convolutions: one score per pixel). Instance norm, LeakyReLU(0.2).

Translation batches hold both domains: x is (N, 2C, H, W), domain A in the first C channels
and domain B in the last C (aligned pairs for pix2pix, independent draws for CycleGAN), and y is
(N, 2) class labels (or None). A family's "latents" are indices into the held-out inputs of
domain A, which `bind` takes from the data before samples are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
from torch import nn

from gancli.config import require_non_negative, require_positive
from gancli.data.base import DataInfo
from gancli.errors import ConfigError, GanError
from gancli.models.family import Family
from gancli.models.options import square_images

SHOWN = 8  # test inputs in each export grid
INDEX_RANGE = 2**31 - 1  # latents are indices drawn from this range, taken modulo the inputs


class GArch(Enum):
    resnet9 = "resnet9"  # 9 residual blocks (the reference's for 256 px)
    resnet6 = "resnet6"  # 6 residual blocks (the reference's for 128 px)
    unet = "unet"  # U-Net with skip connections (pix2pix)


@dataclass
class TranslatorOptions:
    """The keys every translation family's config shares."""

    g_arch: GArch = GArch.resnet9  # resnet9 | resnet6 | unet
    width_g: int = 64  # channels of G's first layer (the reference's ngf)
    width_d: int = 64  # channels of D's first layer (ndf)
    d_layers: int = 3  # PatchGAN stride-2 layers: 3 = 70x70 patches, 0 = pixel GAN
    unet_depth: int = 8  # most U-Net levels (unet_256 has 8); fewer when the size needs it
    dropout: float = 0.0  # dropout in G's residual blocks / inner U-Net levels (pix2pix: 0.5)

    def __post_init__(self):
        require_positive("model.width_g", self.width_g)
        require_positive("model.width_d", self.width_d)
        require_non_negative("model.d_layers", self.d_layers, " (0 is the pixel GAN)")
        require_positive("model.unet_depth", self.unet_depth)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


def norm(channels: int) -> nn.Module:
    # the reference's 'instance' norm: no affine parameters, no running statistics
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                   norm(channels), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int,
                 dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7),
                                   norm(width), nn.ReLU(True)]
        ch = width
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), norm(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch, dropout) for _ in range(blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       norm(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class UnetLevel(nn.Module):
    """One U-Net level: down, the inner levels, up, and (below the outermost) the skip."""

    def __init__(self, outer: int, inner: int, sub: nn.Module | None, *, in_channels: int,
                 outermost: bool = False, dropout: float = 0.0):
        super().__init__()
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2, True)]
        down.append(nn.Conv2d(in_channels, inner, 4, stride=2, padding=1))
        if sub is not None and not outermost:  # the innermost level has no norm going down
            down.append(norm(inner))
        up_in = inner if sub is None else inner * 2
        up: list[nn.Module] = [nn.ReLU(True),
                               nn.ConvTranspose2d(up_in, outer, 4, stride=2, padding=1)]
        if outermost:
            up.append(nn.Tanh())
        else:
            up.append(norm(outer))
            if dropout:
                up.append(nn.Dropout(dropout))
        self.outermost = outermost
        self.down, self.sub, self.up = nn.Sequential(*down), sub, nn.Sequential(*up)

    def forward(self, x):
        h = self.down(x)
        if self.sub is not None:
            h = self.sub(h)
        h = self.up(h)
        return h if self.outermost else torch.cat([x, h], dim=1)


class UnetGenerator(nn.Module):
    """`depth` levels; channels width, 2w, 4w, 8w, then 8w for every deeper level, as in the
    reference; dropout on the levels at 8w below the top three."""

    def __init__(self, in_channels: int, out_channels: int, width: int, depth: int,
                 dropout: float = 0.0):
        super().__init__()
        channels = [min(width * 2**i, width * 8) for i in range(depth)]
        level = None
        for i in range(depth - 1, 0, -1):
            deep = i >= 4 and i < depth - 1  # the reference's dropout levels
            level = UnetLevel(channels[i - 1], channels[i], level, in_channels=channels[i - 1],
                              dropout=dropout if deep else 0.0)
        self.net = UnetLevel(out_channels, channels[0], level, in_channels=in_channels,
                             outermost=True)

    def forward(self, x):
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """A map of scores, one per overlapping patch (per pixel when `layers` = 0)."""

    def __init__(self, in_channels: int, width: int, layers: int):
        super().__init__()
        if layers == 0:  # the pixel GAN: 1x1 convolutions
            net = [nn.Conv2d(in_channels, width, 1), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(width, width * 2, 1), norm(width * 2), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(width * 2, 1, 1)]
        else:
            net = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
            ch = width
            for n in range(1, layers + 1):
                out = width * min(2**n, 8)
                stride = 2 if n < layers else 1
                net += [nn.Conv2d(ch, out, 4, stride=stride, padding=1), norm(out),
                        nn.LeakyReLU(0.2, True)]
                ch = out
            net.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*net)

    def forward(self, x):
        return self.net(x)


def patch_output_side(side: int, layers: int) -> int:
    """The side of a PatchGAN's score map for inputs of `side` pixels."""
    if layers == 0:
        return side
    for _ in range(layers):
        side = side // 2
    return side - 2  # two 4x4 stride-1 convolutions with padding 1 take one pixel each


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """The reference's init_type=normal: conv weights from N(0, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def unet_levels(side: int, most: int) -> int:
    """The deepest U-Net (at most `most` levels) whose halvings divide `side` exactly."""
    depth = 0
    while depth < most and side % 2 ** (depth + 1) == 0:
        depth += 1
    return depth


def build_generator(opts: TranslatorOptions, in_channels: int, out_channels: int,
                    side: int, model: str) -> nn.Module:
    if opts.g_arch is GArch.unet:
        depth = unet_levels(side, opts.unet_depth)
        if depth < 2:
            raise ConfigError(f"model {model} with model.g_arch=unet needs a side divisible by "
                              f"4, got {side}; set the dataset's crop_size or resolution")
        G = UnetGenerator(in_channels, out_channels, opts.width_g, depth, opts.dropout)
    else:
        if side % 4:
            raise ConfigError(f"model {model} with model.g_arch={opts.g_arch.value} needs a "
                              f"side divisible by 4, got {side}; set the dataset's crop_size "
                              f"or resolution")
        blocks = 9 if opts.g_arch is GArch.resnet9 else 6
        G = ResnetGenerator(in_channels, out_channels, opts.width_g, blocks, opts.dropout)
    init_normal(G)
    return G


def build_patch_discriminator(opts: TranslatorOptions, in_channels: int, side: int,
                              model: str) -> nn.Module:
    if patch_output_side(side, opts.d_layers) < 1:
        raise ConfigError(f"model.d_layers={opts.d_layers} is too deep for {side}-pixel images "
                          f"in model {model}; lower model.d_layers")
    D = PatchDiscriminator(in_channels, opts.width_d, opts.d_layers)
    init_normal(D)
    return D


def translation_shape(info: DataInfo, model: str) -> tuple[int, int]:
    """(channels of one domain, side) for translation data, or a clear error."""
    if info.domains != 2:
        raise ConfigError(f"model {model} translates between two image domains; dataset "
                          f"{info.name} is not a translation dataset: use dataset=unpaired, "
                          f"digits2mnist, cyclegan_folder, paired or edges2mnist")
    return square_images(model, info)


class Translator(Family):
    """What CycleGAN and pix2pix share: the batch layout, samples that translate held-out
    inputs of domain A, and export grids of inputs above their translations."""

    sampler_name = "G_ab"
    default_metric = "g_loss"
    directions: tuple[str, ...] = ("a2b",)  # what `translate` can do

    def __init__(self, info: DataInfo):
        super().__init__(info)
        self.channels = info.shape[0]
        self._inputs: dict[str, torch.Tensor] = {}

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch (N, 2C, H, W) -> domain A's (N, C, H, W) and domain B's."""
        return x[:, :self.channels], x[:, self.channels:]

    def bind(self, data, device: torch.device) -> None:
        """Take the held-out inputs that samples translate from `data` (a TranslationData)."""
        self._inputs = {"a": data.test_a[0].to(device), "b": data.test_b[0].to(device)}

    def inputs(self, domain: str) -> torch.Tensor:
        if domain not in self._inputs:
            raise GanError("a translator draws samples from held-out inputs: bind(data) first")
        return self._inputs[domain]

    def sample_latent(self, n, device, generator=None):
        return self.randint(INDEX_RANGE, n, device=device, generator=generator)

    def generate(self, z, y=None, G=None):
        a = self.inputs("a")
        return self.translate(a[z.long().to(a.device) % len(a)], "a2b", G)

    def translate(self, x: torch.Tensor, direction: str, G: nn.Module | None = None
                  ) -> torch.Tensor:
        """Images of the source domain -> the other domain ("a2b" or "b2a")."""
        raise NotImplementedError

    def export_grids(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        """Two-row grids (inputs above outputs) of the first test inputs, by name."""
        return {"a2b": torch.cat([a, self.translate(a, "a2b")])}

    def on_export(self, data, device):
        self.bind(data, device)
        a, b = self.inputs("a")[:SHOWN], self.inputs("b")[:SHOWN]
        return {name: grid.float() for name, grid in self.export_grids(a, b).items()}

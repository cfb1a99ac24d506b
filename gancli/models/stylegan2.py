"""StyleGAN2 (Karras et al. 2020) in plain PyTorch: no custom CUDA ops, runs on a CPU.

G is a mapping network (`model.mapping_layers` fully connected layers at a learning-rate
multiplier of 0.01, z pixel-normed first) from z to a style w, and a synthesis network that
starts from a learned 4x4 constant and, at each resolution, applies modulated 3x3
convolutions (each input channel scaled by a style from w, the weights then demodulated to unit
output variance), per-pixel noise with a learned strength, and a to-RGB layer whose outputs
are summed up the resolutions (`model.g_arch=skip`; `orig`: the last one only). D is a
residual network (`model.d_arch=resnet`; `orig`: plain) with minibatch stddev before its
last block. Resampling uses the [1, 3, 3, 1] blur; every layer has an equalized learning rate.

Training adds style mixing (`model.style_mixing`: the chance that a sample's styles switch
from one z's w to another's at a random layer), the tracked average w (for truncation), and
the path-length regulariser (`loss.pl_weight`, lazily every `loss.pl_every` steps), beside
lazy R1 (`loss.r1`, `loss.reg_every`) and the non-saturating loss.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from gancli.config import require_positive
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.base import GAN
from gancli.models.init import Init
from gancli.models.layers import (
    MinibatchStd,
    PixelNorm,
    add_equalized_lr,
    downsample2,
    upsample2,
)
from gancli.models.options import ModelOptions, doubling_images
from gancli.registry import MODELS

SQRT2 = math.sqrt(2)


class GArch(Enum):
    skip = "skip"  # to-RGB at every resolution, summed (StyleGAN2's default)
    orig = "orig"  # to-RGB at the last resolution only


class DArch(Enum):
    resnet = "resnet"  # residual blocks (StyleGAN2's default)
    orig = "orig"  # plain conv blocks


# model.preset: the values conf/model/stylegan2.yaml's `${model_preset:KEY}` entries take (and
# loss.pl_weight's, in every loss group); a key set in a recipe or on the command line wins.
PRESETS = {
    # the defaults: the paper's config-f at a quarter of its width
    "base": dict(z_dim=128, w_dim=128, mapping_layers=8, width_g=128, width_d=128,
                 style_mixing=0.9, d_arch="resnet", mbstd_group=4, pl_weight=2.0),
    # NVlabs/stylegan2-ada-pytorch train.py cfg_specs['cifar'] (fmaps 1: 512 channels at
    # 32x32), with its cifar exceptions: no path-length regulariser, no mixing, D orig
    "cifar": dict(z_dim=512, w_dim=512, mapping_layers=2, width_g=512, width_d=512,
                  style_mixing=0.0, d_arch="orig", mbstd_group=32, pl_weight=0.0),
    # CPU-sized for 32x32 (+experiment=stylegan2_mnist5k: about 0.4 CPU s a step at batch 32)
    "small": dict(z_dim=64, w_dim=64, mapping_layers=2, width_g=64, width_d=64,
                  style_mixing=0.9, d_arch="resnet", mbstd_group=4, pl_weight=2.0),
}


@dataclass
class StyleGAN2Config(ModelOptions):
    PRESETS: ClassVar[dict[str, dict]] = PRESETS
    name: str = "stylegan2"
    # base | cifar | small: the values of the keys below that the YAML leaves to the preset
    # (z_dim, w_dim, mapping_layers, widths, style_mixing, d_arch, mbstd_group, loss.pl_weight)
    preset: str = "base"
    z_dim: int = 128  # dimensions of z (512 in the paper)
    w_dim: int = 128  # dimensions of the style w (512 in the paper)
    mapping_layers: int = 8  # layers of the mapping network (the reference's cifar config: 2)
    mapping_lr: float = 0.01  # learning-rate multiplier of the mapping network
    width_g: int = 128  # G's channels up to 16x16, halved at each doubling above
    width_d: int = 128  # D's channels, as width_g
    g_arch: GArch = GArch.skip  # skip | orig
    d_arch: DArch = DArch.resnet  # resnet | orig
    style_mixing: float = 0.9  # chance of mixing two styles in a generated sample (0: off)
    w_avg_beta: float = 0.995  # decay of the tracked average w (truncation's centre)
    mbstd_group: int = 4  # samples per minibatch-stddev group (0: off)
    mbstd_channels: int = 1  # feature maps minibatch stddev appends
    init: Init = Init.default  # the weights are N(0, 1), scaled at run time (equalized lr)

    def __post_init__(self):
        super().__post_init__()
        if self.preset not in PRESETS:
            raise ConfigError(f"model.preset must be one of {', '.join(PRESETS)}, got "
                              f"{self.preset}")
        for key in ("z_dim", "w_dim", "mapping_layers", "mapping_lr", "width_g", "width_d",
                    "mbstd_channels"):
            require_positive(f"model.{key}", getattr(self, key))
        for key in ("style_mixing", "w_avg_beta"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"model.{key} must be in [0, 1], got {getattr(self, key)}")
        if self.mbstd_group < 0:
            raise ConfigError(f"model.mbstd_group must be >= 0 (0 is off), got "
                              f"{self.mbstd_group}")
        if self.pack != 1:
            raise ConfigError("model stylegan2 judges single samples; set model.pack=1")


def width_at(width: int, resolution: int) -> int:
    return max(1, min(width, width * 16 // resolution))


class ModulatedConv(nn.Module):
    """A convolution whose input channels are scaled per sample by a style from w (an affine
    map, bias 1), its weights then demodulated (divided by their per-output-channel norm) so
    unit-variance inputs give unit-variance outputs; optionally upsampling first."""

    def __init__(self, cin: int, cout: int, kernel: int, w_dim: int, demodulate: bool = True,
                 up: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.gain = 1 / math.sqrt(cin * kernel * kernel)  # equalized learning rate
        self.affine = add_equalized_lr(nn.Linear(w_dim, cin), gain=1.0)
        with torch.no_grad():
            self.affine.bias.fill_(1.0)
        self.demodulate, self.up, self.padding = demodulate, up, kernel // 2

    def styled_weight(self, w: torch.Tensor) -> torch.Tensor:
        """(N, cout, cin, k, k): the per-sample weights."""
        style = self.affine(w)
        weight = self.weight[None] * self.gain * style[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True)
                                          + 1e-8)
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = upsample2(x)
        n, cin, h, width = x.shape
        weight = self.styled_weight(w)
        out = F.conv2d(x.reshape(1, n * cin, h, width), weight.reshape(-1, cin, *weight.shape[3:]),
                       padding=self.padding, groups=n)  # one group per sample
        return out.reshape(n, -1, h, width)


class SynthesisLayer(nn.Module):
    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, up: bool):
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                noise: str | torch.Tensor = "random") -> torch.Tensor:
        x = self.conv(x, w)
        if isinstance(noise, torch.Tensor):  # drawn by the family (training)
            x = x + noise.to(x.dtype) * self.noise_strength
        elif noise == "random":
            x = x + torch.randn_like(x[:, :1]) * self.noise_strength
        elif noise == "const":
            x = x + self.noise_const * self.noise_strength
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * SQRT2


class ToRGB(nn.Module):
    def __init__(self, cin: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv(cin, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class Synthesis(nn.Module):
    def __init__(self, w_dim: int, width: int, channels: int, resolution: int, arch: GArch):
        super().__init__()
        self.arch = arch
        c4 = width_at(width, 4)
        self.const = nn.Parameter(torch.randn(c4, 4, 4))
        self.blocks = nn.ModuleList([nn.ModuleList([SynthesisLayer(c4, c4, w_dim, 4, False)])])
        self.to_rgb = nn.ModuleList([ToRGB(c4, channels, w_dim)])
        self.resolutions = [4]  # of each conv layer's output (and noise input)
        res = 4
        while res < resolution:
            cin, res = width_at(width, res), res * 2
            cout = width_at(width, res)
            self.blocks.append(nn.ModuleList([SynthesisLayer(cin, cout, w_dim, res, True),
                                              SynthesisLayer(cout, cout, w_dim, res, False)]))
            self.to_rgb.append(ToRGB(cout, channels, w_dim))
            self.resolutions += [res, res]
        # one w per conv layer, plus one for the last to-RGB (each to-RGB reads the w after its
        # block's convolutions, as in the reference)
        self.num_ws = sum(len(b) for b in self.blocks) + 1

    def forward(self, ws: torch.Tensor, noise: str | list[torch.Tensor] = "random"
                ) -> torch.Tensor:
        """Images of styles `ws`; `noise` is a mode (random|const|none) or one map per layer."""
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)
        rgb, i = None, 0
        for k, (layers, to_rgb) in enumerate(zip(self.blocks, self.to_rgb, strict=True)):
            for layer in layers:
                x = layer(x, ws[:, i], noise if isinstance(noise, str) else noise[i])
                i += 1
            if self.arch is GArch.skip or k == len(self.blocks) - 1:
                y = to_rgb(x, ws[:, i])
                rgb = y if rgb is None else upsample2(rgb) + y
        return rgb


def batch_mean(x: torch.Tensor) -> torch.Tensor:
    """x's mean over the batch; under data parallelism over every rank's slice, so the ranks
    track one running statistic (w average, path-length mean), the one a single process would."""
    mean = x.mean(dim=0).float()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(mean)
        mean = mean / dist.get_world_size()
    return mean


class StyleGenerator(nn.Module):
    def __init__(self, cfg: StyleGAN2Config, channels: int, resolution: int):
        super().__init__()
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(cfg.mapping_layers):
            layers += [nn.Linear(cfg.z_dim if i == 0 else cfg.w_dim, cfg.w_dim),
                       nn.LeakyReLU(0.2)]
        self.mapping = add_equalized_lr(nn.Sequential(*layers), lr_multiplier=cfg.mapping_lr)
        self.synthesis = Synthesis(cfg.w_dim, cfg.width_g, channels, resolution, cfg.g_arch)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.w_avg_beta = cfg.w_avg_beta
        # sampling options, set by gan sample (truncation_cutoff None: every layer truncated)
        self.truncation, self.truncation_cutoff, self.noise = 1.0, None, "random"

    def styles(self, z: torch.Tensor, truncation: float = 1.0,
               cutoff: int | None = None) -> torch.Tensor:
        """(N, num_ws, w_dim): z's w for every layer, pulled towards the average w on the
        first `cutoff` layers (None: all; stylegan2-ada's truncation_cutoff)."""
        num_ws = self.synthesis.num_ws
        ws = self.mapping(z.flatten(1))[:, None].expand(-1, num_ws, -1)
        if truncation != 1:
            layer = torch.arange(num_ws, device=ws.device)[None, :, None]
            ws = torch.where(layer < (num_ws if cutoff is None else cutoff),
                             torch.lerp(self.w_avg, ws, truncation), ws)
        return ws

    def forward(self, z: torch.Tensor, mix: torch.Tensor | None = None,
                cut: torch.Tensor | None = None, return_ws: bool = False,
                noise: list[torch.Tensor] | None = None):
        """Images of z; with `mix`, sample i takes mix[i]'s w from layer cut[i] on (style
        mixing); `noise`: one map per layer (None: as `self.noise` says). In training mode the
        average w follows z's."""
        ws = self.styles(z, self.truncation, self.truncation_cutoff)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(torch.lerp(batch_mean(ws[:, 0]), self.w_avg, self.w_avg_beta))
        if mix is not None:
            layer = torch.arange(ws.shape[1], device=ws.device)[None, :, None]
            ws = torch.where(layer >= cut[:, None, None],
                             self.styles(mix, self.truncation, self.truncation_cutoff), ws)
        images = self.synthesis(ws, self.noise if noise is None else noise)
        return (images, ws) if return_ws else images


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, residual: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(downsample2(h)), 0.2)
        if self.skip is None:
            return h
        return (h + self.skip(downsample2(x))) / SQRT2


class StyleDiscriminator(nn.Module):
    def __init__(self, cfg: StyleGAN2Config, channels: int, resolution: int):
        super().__init__()
        self.from_rgb = nn.Conv2d(channels, width_at(cfg.width_d, resolution), 1)
        blocks, res = [], resolution
        while res > 4:
            blocks.append(DBlock(width_at(cfg.width_d, res), width_at(cfg.width_d, res // 2),
                                 cfg.d_arch is DArch.resnet))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = width_at(cfg.width_d, 4)
        extra = cfg.mbstd_channels if cfg.mbstd_group else 0
        self.mbstd = (MinibatchStd(cfg.mbstd_group, cfg.mbstd_channels) if cfg.mbstd_group
                      else nn.Identity())
        self.conv = nn.Conv2d(c4 + extra, c4, 3, padding=1)
        self.fc = nn.Linear(c4 * 16, c4)
        self.out = nn.Linear(c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2))
        h = F.leaky_relu(self.conv(self.mbstd(h)), 0.2)
        return self.out(F.leaky_relu(self.fc(h.flatten(1)), 0.2)).flatten()


def path_lengths(images: torch.Tensor, ws: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|J_w^T y| per sample, y image-shaped N(0, 1) / sqrt(pixels), J the Jacobian of the
    images with respect to their styles `ws`: how far an image moves as its w moves (the
    path-length regulariser's quantity)."""
    y = y / math.sqrt(images.shape[2] * images.shape[3])
    grad, = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


class StyleGAN2(GAN):
    path_length = True

    def __init__(self, G: StyleGenerator, D: StyleDiscriminator, cfg: StyleGAN2Config,
                 info: DataInfo):
        super().__init__(G, D, cfg.z_dim, info)
        self.style_mixing = cfg.style_mixing
        self.register_buffer("pl_mean", torch.zeros(()))

    def logged_terms(self) -> set[str]:
        return super().logged_terms() | {"pl_penalty"}

    def _generators(self) -> list[StyleGenerator]:
        return [m for m in self.modules() if isinstance(m, StyleGenerator)]

    @contextlib.contextmanager
    def truncation(self, value: float | None, cutoff: int | None = None):
        """StyleGAN2's truncation: w = w_avg + psi (w - w_avg) with psi = `value` on the first
        `cutoff` layers (None: all), applied by G itself; z is drawn as usual."""
        with (self._setting("truncation", 1.0 if value is None else value),
              self._setting("truncation_cutoff", cutoff)):
            yield

    @contextlib.contextmanager
    def noise_inputs(self, mode: str | None):
        with self._setting("noise", mode or "random"):
            yield

    @contextlib.contextmanager
    def _setting(self, name: str, value):
        generators = self._generators()
        previous = [getattr(G, name) for G in generators]
        for G in generators:
            setattr(G, name, value)
        try:
            yield
        finally:
            for G, old in zip(generators, previous, strict=True):
                setattr(G, name, old)

    @torch.no_grad()
    def mixing_grid(self, n: int, device: torch.device, seed: int) -> torch.Tensor:
        """(n + 1)^2 images: a blank corner, n column sources along the top, n row sources
        down the left, and in cell (i, j) row i's styles on the coarse layers (the lower half)
        with column j's on the fine ones."""
        G = self._generators()[0]
        gen = torch.Generator(device).manual_seed(seed)
        rows, cols = (G.styles(self.sample_latent(n, device, generator=gen), G.truncation,
                               G.truncation_cutoff) for _ in range(2))
        coarse = G.synthesis.num_ws // 2
        mixed = torch.cat([rows[:, None, :coarse].expand(-1, n, -1, -1),
                           cols[None, :, coarse:].expand(n, -1, -1, -1)], dim=2)
        images = [G.synthesis(ws, G.noise) for ws in (cols, rows, mixed.flatten(0, 1))]
        top, left, cells = images
        blank = torch.full_like(top[:1], -1.0)
        grid = [blank, top]
        for i in range(n):
            grid += [left[i:i + 1], cells[i * n:(i + 1) * n]]
        return torch.cat(grid).float().cpu()

    def num_ws(self) -> int:
        return next(m.num_ws for m in self.modules() if isinstance(m, Synthesis))

    def mixing(self, n: int, device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Style mixing draws for n samples: a second z each, and the layer from which it
        takes over (num_ws, i.e. never, for the 1 - style_mixing share not mixed)."""
        if self.style_mixing == 0:
            return None, None
        num_ws = self.num_ws()
        other = self.sample_latent(n, device)
        mixed = self.rand(n, device=device) < self.style_mixing
        cut = self.randint(num_ws - 1, n, device=device) + 1
        return other, torch.where(mixed, cut, torch.full_like(cut, num_ws))

    def noise_maps(self, n: int, device) -> list[torch.Tensor] | None:
        """One noise map per layer for n samples, drawn from the family's stream (so ranks
        draw their slices of one process's noise); None when G's noise is not random."""
        G = self._generators()[0]
        if G.noise != "random":
            return None
        return [self.randn(n, 1, r, r, device=device) for r in G.synthesis.resolutions]

    def _generate_batch(self, n, device):
        z = self.sample_latent(n, device)
        mix, cut = self.mixing(n, device)
        return self.G(z, mix, cut, noise=self.noise_maps(n, device)), None, z

    def train_step(self, ctx, batches, step, stats):
        reg = ctx.loss.reg
        skipped = super().train_step(ctx, batches, step, stats)
        if reg.pl_weight and step % reg.pl_every == 0:
            skipped += not self._path_length_update(ctx, step, stats, reg)
        return skipped

    def _path_length_update(self, ctx, step, stats, reg) -> bool:
        """The lazy path-length regulariser: (|J^T y| - a)^2 with a the running mean of the
        lengths, on half a batch, weighted by pl_weight x pl_every."""
        n = max(1, ctx.options.batch_size // 2)  # the reference's pl_batch_shrink of 2
        with ctx.fp32():
            z = self.sample_latent(n, ctx.device)
            mix, cut = self.mixing(n, ctx.device)
            images, ws = self.G(z, mix, cut, return_ws=True,
                                noise=self.noise_maps(n, ctx.device))
            lengths = path_lengths(images, ws, self.randn(n, *images.shape[1:],
                                                          device=ctx.device))
            with torch.no_grad():  # one running mean on every rank
                self.pl_mean.copy_(torch.lerp(self.pl_mean, batch_mean(lengths), 0.01))
            penalty = (lengths - self.pl_mean).square().mean()
        # + 0 x images: every parameter G used gets a gradient, zero where the penalty does
        # not reach (biases): DDP waits for all of them (the reference does the same)
        loss = penalty * reg.pl_weight * reg.pl_every + images[:, 0, 0, 0].sum() * 0
        applied = ctx.update(loss, "g", step, None)
        if stats is not None:
            stats["pl_penalty"] = penalty.item()
        return applied


@MODELS.register("stylegan2", StyleGAN2Config)
def build_stylegan2(cfg: StyleGAN2Config, info: DataInfo) -> StyleGAN2:
    channels, size = doubling_images("stylegan2", info)
    G = StyleGenerator(cfg, channels, size)
    D = add_equalized_lr(StyleDiscriminator(cfg, channels, size))
    return StyleGAN2(G, D, cfg, info)

"""ProGAN (Karras et al. 2018): G and D grow from 4x4 to the data resolution while training.

Training starts at 4x4. Each further resolution is faded in over `model.phase_steps` steps
(the new block's output blended with the previous resolution's, alpha from 0 to 1), then
trained alone for `model.phase_steps` more; the real images D sees are averaged down to the
current resolution, and blended the same way while a block fades in. The layers are the
paper's: equalized learning rate everywhere, pixel norm after each of G's convolutions,
minibatch standard deviation before D's last block, nearest upsampling, average pooling.
The paper trains it with WGAN-GP plus a drift term (`loss=wgan-gp loss.drift=0.001`) and
Adam(lr 0.001, betas (0, 0.99)): `+experiment=progan_mnist5k`, `+experiment=progan_celeba`.

The stage and alpha are buffers of G and D, set from the step at the start of each update, so
checkpoints carry them: `gan sample` on a checkpoint taken mid-growth samples at its resolution
and alpha (upsampled to the data size, as every sample export is), and a resume mid-fade is
exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gancli.config import require_positive
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.base import GAN
from gancli.models.init import Init
from gancli.models.layers import MinibatchStd, PixelNorm, add_equalized_lr
from gancli.models.options import ModelOptions, add_spectral_norm, doubling_images
from gancli.registry import MODELS


@dataclass
class ProGANConfig(ModelOptions):
    name: str = "progan"
    z_dim: int = 128  # dimensions of G's input noise (512 in the paper)
    # channels of G's blocks up to 16x16, halved at each doubling above it (512 in the paper)
    width_g: int = 128
    width_d: int = 128  # D's channels, as width_g
    phase_steps: int = 1000  # steps of fade-in, then of stable training, per new resolution
    mbstd_group: int = 4  # samples per minibatch-stddev group (0: no minibatch stddev)
    mbstd_channels: int = 1  # feature maps minibatch stddev appends
    reset_optimizer: bool = False  # clear the Adam state when a new resolution starts
    init: Init = Init.default  # equalized_lr redraws the weights anyway
    equalized_lr: bool = True  # Karras et al.: weights scaled at run time by He's constant

    def __post_init__(self):
        super().__post_init__()
        for key in ("z_dim", "width_g", "width_d", "phase_steps", "mbstd_channels"):
            require_positive(f"model.{key}", getattr(self, key))
        if self.mbstd_group < 0:
            raise ConfigError(f"model.mbstd_group must be >= 0 (0 is off), got "
                              f"{self.mbstd_group}")
        if self.pack != 1:
            raise ConfigError("model progan judges single samples (minibatch stddev sees the "
                              "batch); set model.pack=1")


def growth(step: int, phase_steps: int, stages: int) -> tuple[int, float]:
    """(stage, alpha) for the update numbered `step` (1-based): stage 0 (4x4) trains for
    phase_steps; each later stage fades in over phase_steps (alpha 0, 1/P, ..., (P-1)/P), then
    trains with alpha 1 for phase_steps; the last stage stays."""
    k = step - 1
    if k < phase_steps:
        return 0, 1.0
    stage, within = divmod(k - phase_steps, 2 * phase_steps)
    stage += 1
    if stage > stages:
        return stages, 1.0
    return stage, min(1.0, within / phase_steps)


def width_at(width: int, resolution: int) -> int:
    return max(1, min(width, width * 16 // resolution))


def _conv(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2), nn.LeakyReLU(0.2))


def upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class Growing(nn.Module):
    """A network whose current stage and fade-in alpha are buffers (checkpointed)."""

    def __init__(self, stages: int):
        super().__init__()
        self.stages = stages
        self.register_buffer("stage", torch.zeros((), dtype=torch.long))
        self.register_buffer("alpha", torch.ones(()))

    def resolution(self) -> int:
        return 4 * 2 ** int(self.stage)


class ProGenerator(Growing):
    def __init__(self, z_dim: int, width: int, channels: int, stages: int):
        super().__init__(stages)
        c4 = width_at(width, 4)
        self.first = nn.Sequential(PixelNorm(), nn.Linear(z_dim, c4 * 16))
        self.first_conv = nn.Sequential(_conv(c4, c4), PixelNorm())
        self.blocks = nn.ModuleList()
        self.to_rgb = nn.ModuleList([nn.Conv2d(c4, channels, 1)])
        for s in range(1, stages + 1):
            cin, cout = width_at(width, 4 * 2 ** (s - 1)), width_at(width, 4 * 2 ** s)
            self.blocks.append(nn.Sequential(_conv(cin, cout), PixelNorm(),
                                             _conv(cout, cout), PixelNorm()))
            self.to_rgb.append(nn.Conv2d(cout, channels, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images at the current resolution."""
        stage, alpha = int(self.stage), self.alpha
        x = self.first(z.flatten(1))
        x = F.leaky_relu(x.view(x.shape[0], -1, 4, 4), 0.2)
        x = self.first_conv(PixelNorm()(x))
        for s in range(1, stage):
            x = self.blocks[s - 1](upsample2(x))
        if stage == 0:
            return self.to_rgb[0](x)
        new = self.to_rgb[stage](self.blocks[stage - 1](upsample2(x)))
        if float(alpha) >= 1:
            return new
        return torch.lerp(upsample2(self.to_rgb[stage - 1](x)), new, alpha)


class ProDiscriminator(Growing):
    def __init__(self, width: int, channels: int, stages: int, mbstd_group: int,
                 mbstd_channels: int):
        super().__init__(stages)
        self.from_rgb = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for s in range(stages + 1):
            c = width_at(width, 4 * 2 ** s)
            self.from_rgb.append(nn.Sequential(nn.Conv2d(channels, c, 1), nn.LeakyReLU(0.2)))
            if s:
                self.blocks.append(nn.Sequential(
                    _conv(c, c), _conv(c, width_at(width, 4 * 2 ** (s - 1))), nn.AvgPool2d(2)))
        c4 = width_at(width, 4)
        extra = mbstd_channels if mbstd_group else 0
        self.final = nn.Sequential(
            MinibatchStd(mbstd_group, mbstd_channels) if mbstd_group else nn.Identity(),
            _conv(c4 + extra, c4), nn.Conv2d(c4, c4, 4), nn.LeakyReLU(0.2),  # 4x4 -> 1x1
            nn.Flatten(), nn.Linear(c4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of images at the current resolution."""
        stage, alpha = int(self.stage), self.alpha
        h = self.from_rgb[stage](x)
        if stage > 0:
            h = self.blocks[stage - 1](h)
            if float(alpha) < 1:
                h = torch.lerp(self.from_rgb[stage - 1](F.avg_pool2d(x, 2)), h, alpha)
            for s in range(stage - 1, 0, -1):
                h = self.blocks[s - 1](h)
        return self.final(h).flatten()


class ProGAN(GAN):
    unused_parameters = True  # blocks of resolutions not reached yet

    def __init__(self, G: ProGenerator, D: ProDiscriminator, cfg: ProGANConfig,
                 info: DataInfo):
        super().__init__(G, D, cfg.z_dim, info)
        self.phase_steps, self.reset_optimizer = cfg.phase_steps, cfg.reset_optimizer
        self.resolution = info.shape[-1]

    def logged_terms(self) -> set[str]:
        return super().logged_terms() | {"resolution", "alpha"}

    def set_growth(self, step: int) -> bool:
        """Stage and alpha of update `step` in G and D (DDP-wrapped or not); True when the
        stage changed."""
        stage, alpha = growth(step, self.phase_steps, self._generator().stages)
        changed = False
        for module in self.modules():
            if isinstance(module, Growing):
                changed |= int(module.stage) != stage
                module.stage.fill_(stage)
                module.alpha.fill_(alpha)
        return changed

    def _generator(self) -> ProGenerator:
        """G itself, whether or not the training view wraps it in DDP."""
        return next(m for m in self.modules() if isinstance(m, ProGenerator))

    def train_step(self, ctx, batches, step, stats):
        if self.set_growth(step) and self.reset_optimizer:
            for opt in ctx.optimizers.values():
                opt.state.clear()
        skipped = super().train_step(ctx, _AtResolution(batches, self), step, stats)
        if stats is not None:
            growing = self._generator()
            stats.update(resolution=growing.resolution(), alpha=float(growing.alpha))
        return skipped

    def current(self, x: torch.Tensor) -> torch.Tensor:
        """Full-size real images as D sees them now: averaged down to the current resolution,
        and, while a block fades in, blended with the resolution below as G's output is."""
        growing = self._generator()
        size = growing.resolution()
        x = F.adaptive_avg_pool2d(x, size) if x.shape[-1] != size else x
        if float(growing.alpha) < 1:
            x = torch.lerp(upsample2(F.avg_pool2d(x, 2)), x, growing.alpha)
        return x

    def _generate_batch(self, n, device):
        z = self.sample_latent(n, device)
        return self.G(z), None, z  # at the current resolution, as D sees the reals

    def generate(self, z, y=None, G=None):
        """Samples upsampled to the data resolution (what exports, `gan sample` and `gan
        eval` see)."""
        x = (G or self.G)(z)
        return F.interpolate(x, size=self.resolution, mode="nearest")


class _AtResolution:
    """The real batches, brought to the current resolution as they are drawn."""

    def __init__(self, batches, family: ProGAN):
        self.batches, self.family = batches, family

    def __next__(self):
        x, y = next(self.batches)
        return self.family.current(x), y


@MODELS.register("progan", ProGANConfig)
def build_progan(cfg: ProGANConfig, info: DataInfo) -> ProGAN:
    channels, size = doubling_images("progan", info)
    stages = round(math.log2(size)) - 2
    G = ProGenerator(cfg.z_dim, cfg.width_g, channels, stages)
    D = ProDiscriminator(cfg.width_d, channels, stages, cfg.mbstd_group, cfg.mbstd_channels)
    if cfg.equalized_lr:
        add_equalized_lr(G)
        add_equalized_lr(D)
    if cfg.spectral_norm_d:
        add_spectral_norm(D)
    return ProGAN(G, D, cfg, info)

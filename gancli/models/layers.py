"""Layers of the Karras et al. generators (ProGAN 2018, StyleGAN2 2020), usable by any model:
equalized learning rate, pixel norm, minibatch standard deviation, and the [1, 3, 3, 1] blur
that ProGAN's successors resample with.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

WEIGHTED_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def fan_in(layer: nn.Module) -> int:
    """Inputs that feed one output unit: in_features, or in_channels x kernel area (for a
    transposed convolution too, as ProGAN counts its upscaling convolutions)."""
    weight = layer.weight
    if isinstance(layer, nn.Linear):
        return weight.shape[1]
    if isinstance(layer, nn.ConvTranspose2d):
        return weight.shape[0] * weight[0, 0].numel()
    return weight[0].numel()


class Scaled(nn.Module):
    """A parametrization: the stored tensor times a constant, applied at every forward."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor * self.scale


def add_equalized_lr(module: nn.Module, gain: float = math.sqrt(2),
                     lr_multiplier: float = 1.0) -> nn.Module:
    """Equalized learning rate (ProGAN, section 4.1) on every linear and convolution layer:
    the stored weight is drawn from N(0, 1 / lr_multiplier^2) and scaled at run time by
    gain * lr_multiplier / sqrt(fan_in), so Adam's steps have the same relative size in every
    layer (He's initialisation, applied at each forward). Biases start at 0 and are scaled by
    lr_multiplier (StyleGAN's mapping network uses 0.01). Replaces the layers' initialisation."""
    for layer in list(module.modules()):
        if not isinstance(layer, WEIGHTED_LAYERS):
            continue
        with torch.no_grad():
            layer.weight.normal_(0.0, 1.0 / lr_multiplier)
            if layer.bias is not None:
                layer.bias.zero_()
        scale = gain * lr_multiplier / math.sqrt(fan_in(layer))
        parametrize.register_parametrization(layer, "weight", Scaled(scale))
        if layer.bias is not None and lr_multiplier != 1.0:
            parametrize.register_parametrization(layer, "bias", Scaled(lr_multiplier))
    return module


class PixelNorm(nn.Module):
    """Each pixel's feature vector scaled to unit mean square (ProGAN's G, StyleGAN's z)."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


def group_size(batch: int, group: int) -> int:
    """The largest size <= `group` that divides `batch` (StyleGAN2 asks for a divisor)."""
    size = min(group, batch)
    while batch % size:
        size -= 1
    return size


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (ProGAN 3, StyleGAN2's variant): the batch is split into
    groups of `group` samples and the features into `channels` parts; each part's standard
    deviation over a group, averaged over its channels and pixels, is appended as one more
    feature map to every sample of the group. D sees how varied a batch is, which counters
    mode collapse. (N, C, H, W) -> (N, C + channels, H, W)."""

    def __init__(self, group: int = 4, channels: int = 1):
        super().__init__()
        if group < 1 or channels < 1:
            raise ValueError(f"group and channels must be >= 1, got {group}, {channels}")
        self.group, self.channels = group, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if c % self.channels:
            raise ValueError(f"{c} feature channels cannot be split into {self.channels} parts")
        g, f = group_size(n, self.group), self.channels
        # sample i is member i // (n/g) of group i % (n/g)
        y = x.float().reshape(g, -1, f, c // f, h, w)
        # the variance spelled out: on the CPU, torch's var over this outer dimension ran 5-8
        # times slower, forward and backward (32-64 samples of 64x7x7 to 512x4x4 features)
        y = ((y - y.mean(dim=0)).square().mean(dim=0) + 1e-8).sqrt()  # (n/g, f, c/f, h, w)
        y = y.mean(dim=(2, 3, 4)).to(x.dtype)  # (n/g, f)
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # back to one row per sample
        return torch.cat([x, y], dim=1)


def blur_kernel(dtype=torch.float32, device=None) -> torch.Tensor:
    """The 4x4 binomial filter [1, 3, 3, 1] x [1, 3, 3, 1], summing to 1."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=dtype, device=device)
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum()


def _depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return kernel.expand(x.shape[1], 1, *kernel.shape)


def downsample2(x: torch.Tensor) -> torch.Tensor:
    """Blur with [1, 3, 3, 1] and keep every second pixel: (H, W) -> (H/2, W/2)."""
    kernel = _depthwise(x, blur_kernel(x.dtype, x.device))
    return F.conv2d(x, kernel, stride=2, padding=1, groups=x.shape[1])


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros between pixels and blur with 4 x [1, 3, 3, 1] (the 4 keeps the mean):
    (H, W) -> (2H, 2W)."""
    kernel = _depthwise(x, 4 * blur_kernel(x.dtype, x.device))
    return F.conv_transpose2d(x, kernel, stride=2, padding=1, groups=x.shape[1])

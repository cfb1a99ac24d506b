"""Class-conditional generators built from any backbone generator, and the GAN base class of
the families whose samples have labels (cgan, acgan).

Two ways to give G the label:
- `cbn`: every BatchNorm of the backbone becomes a class-conditional BatchNorm, whose scale and
  shift are looked up per class (de Vries et al. 2017; Miyato & Koyama 2018, BigGAN);
- `concat`: the one-hot label is appended to the noise (Mirza & Osindero 2014); works with any
  backbone, including an MLP without BatchNorm.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
from torch import nn

from gancli.data.base import DataInfo
from gancli.errors import ConfigError, GanError
from gancli.models.backbone import (
    Backbone,
    BackboneOptions,
    build_backbone,
    one_hot,
    require_labels,
    require_single_samples,
    resolve_arch,
)
from gancli.models.base import GAN


class GConditioning(Enum):
    auto = "auto"  # cbn for resnet (as SNGAN/BigGAN), concat for dcgan and mlp
    cbn = "cbn"
    concat = "concat"


@dataclass
class ConditionalOptions(BackboneOptions):
    g_conditioning: GConditioning = GConditioning.auto  # how G takes the label


def resolve_conditioning(how: GConditioning, arch: str) -> GConditioning:
    # On mnist5k with the dcgan backbone, concat learned the classes much faster than cbn
    # (95% vs 32% of samples classified as asked after 3000 steps; README, Labels and codes).
    if how is GConditioning.auto:
        return GConditioning.cbn if arch == "resnet" else GConditioning.concat
    return how


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine part, then a scale and shift computed from a condition.

    The condition is a batch of class labels (cgan, acgan): a per-class scale (starting at 1)
    and shift (starting at 0) are looked up; or, with `condition_dim`, a batch of vectors
    (BigGAN: the shared class embedding, with a chunk of z when hierarchical): the scale is
    1 + a linear map of it and the shift another (Brock et al. 2019). The condition is passed
    to `forward`, or set on `condition` by a generator whose blocks take x alone."""

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm, num_classes: int,
                 condition_dim: int | None = None):
        super().__init__()
        c = norm.num_features
        self.norm = type(norm)(c, eps=norm.eps, momentum=norm.momentum, affine=False)
        if condition_dim is None:
            self.gain, self.bias = nn.Embedding(num_classes, c), nn.Embedding(num_classes, c)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
            self.gain_offset = 0.0
        else:
            self.gain = nn.Linear(condition_dim, c, bias=False)
            self.bias = nn.Linear(condition_dim, c, bias=False)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)
            self.gain_offset = 1.0
        self.condition: torch.Tensor | None = None

    def forward(self, x, condition: torch.Tensor | None = None):
        condition = self.condition if condition is None else condition
        if condition is None:
            raise GanError("a class-conditional BatchNorm was called without labels")
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        return (self.norm(x) * (self.gain_offset + self.gain(condition)).view(shape)
                + self.bias(condition).view(shape))


def replace_batchnorms(net: nn.Module, num_classes: int,
                       condition_dim: int | None = None) -> list[ConditionalBatchNorm]:
    """Every BatchNorm inside `net` swapped, in place, for a ConditionalBatchNorm."""
    swapped = []
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            cbn = ConditionalBatchNorm(child, num_classes, condition_dim)
            setattr(net, name, cbn)
            swapped.append(cbn)
        else:
            swapped += replace_batchnorms(child, num_classes, condition_dim)
    return swapped


class ConditionalGenerator(nn.Module):
    """A backbone generator taking (z, y). With `concat` the backbone must have been built
    for z_dim + num_classes inputs."""

    def __init__(self, net: nn.Module, num_classes: int, how: GConditioning):
        super().__init__()
        self.net, self.num_classes, self.how = net, num_classes, how.value
        self.cbn = replace_batchnorms(net, num_classes) if how is GConditioning.cbn else []
        if how is GConditioning.cbn and not self.cbn:
            raise ConfigError("model.g_conditioning=cbn needs BatchNorm layers in G and this "
                              "backbone has none; use model.g_conditioning=concat")

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.how == "concat":
            return self.net(torch.cat([z, one_hot(y, self.num_classes)], dim=1))
        for layer in self.cbn:  # the backbone's forward takes z alone: hand y to its norms
            layer.condition = y
        try:
            return self.net(z)
        finally:
            for layer in self.cbn:
                layer.condition = None


class ConditionalGAN(GAN):
    """Generated samples get uniformly drawn class labels, and G needs them."""

    conditional = True

    def sample_labels(self, n, device, generator=None):
        return self.randint(self.info.num_classes, n, device=device, generator=generator)

    def generate(self, z, y=None, G=None):
        if y is None:
            raise GanError(f"{type(self).__name__} generates from labels; none were given")
        return (G or self.G)(z, y)


def build_conditional_backbone(cfg: ConditionalOptions, info: DataInfo,
                               model: str) -> tuple[Backbone, ConditionalGenerator]:
    """The backbone of a class-conditional family, after its checks, and G taking (z, y)."""
    require_labels(info, model)
    require_single_samples(cfg, model)
    how = resolve_conditioning(cfg.g_conditioning, resolve_arch(cfg.arch, info))
    extra = info.num_classes if how is GConditioning.concat else 0
    net = build_backbone(cfg, info, extra_inputs=extra)
    return net, ConditionalGenerator(net.G, info.num_classes, how)

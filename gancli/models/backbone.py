"""The unconditional architectures (dcgan, resnet, mlp) as backbones of the model families
that use labels or codes (cgan, acgan, infogan, sgan).

Those families build a backbone G and D with the backbone's own builder, then wrap them: G gets
the labels or codes as extra inputs, D gets heads on `D.features(x)` (what its last layer sees)
beside its own score `D.score(features)`. Their configs derive from `BackboneOptions`, so
`model.arch`, `model.z_dim`, `model.width_g/width_d`, `model.init` and `model.spectral_norm_d`
mean the same for all four.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gancli.config import require_positive
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.base import GAN
from gancli.models.init import Init, init_weights
from gancli.models.layers import add_equalized_lr
from gancli.models.options import WEIGHTED_LAYERS, ModelOptions
from gancli.registry import MODELS


class Arch(Enum):
    auto = "auto"  # dcgan for images, mlp for points
    dcgan = "dcgan"
    resnet = "resnet"
    mlp = "mlp"




@dataclass
class BackboneOptions(ModelOptions):
    arch: Arch = Arch.auto  # network pair; auto: dcgan for images, mlp for points
    z_dim: int | None = None  # noise dims; null: the backbone's (dcgan 100, resnet 128, mlp 64)
    width_g: int | None = None  # G's width; null: the backbone's default
    width_d: int | None = None  # D's width
    init: Init | None = None  # null: the backbone's default

    def __post_init__(self):
        super().__post_init__()
        for key in ("z_dim", "width_g", "width_d"):
            require_positive(f"model.{key}", getattr(self, key))


def require_labels(info: DataInfo, model: str) -> None:
    """Fail before training when a model that needs classes meets a dataset without them."""
    if info.num_classes < 2:
        raise ConfigError(f"model {model} needs class labels, but dataset {info.name} has none; "
                          f"use a labeled dataset (mnist5k, digits, mnist, fashion_mnist, "
                          f"cifar10, ring8, grid25, or folder with one subfolder per class)")


def require_single_samples(opts: ModelOptions, model: str) -> None:
    if opts.pack != 1:
        raise ConfigError(f"model.pack={opts.pack}: model {model} judges each sample with its "
                          f"own label or code, so it cannot pack samples; set model.pack=1")


def resolve_arch(arch: Arch, info: DataInfo) -> str:
    if arch is Arch.auto:
        return "dcgan" if info.kind == "image" else "mlp"
    return arch.value


@dataclass
class Backbone:
    G: nn.Module
    D: nn.Module  # has features(x) -> (N, D.feature_dim) and score(features) -> (N,)
    arch: str
    z_dim: int  # noise dimensions (G's input is z_dim + the extra inputs asked for)
    init: Init


def build_backbone(opts: BackboneOptions, info: DataInfo, extra_inputs: int = 0) -> Backbone:
    """G and D of the chosen architecture, initialised (and D spectrally normalised) by its
    own builder; G takes `extra_inputs` more input dimensions than the noise."""
    arch = resolve_arch(opts.arch, info)
    entry = MODELS.get(arch)
    defaults = entry.config()
    z_dim = opts.z_dim or defaults.z_dim
    changes = {"z_dim": z_dim + extra_inputs, "spectral_norm_d": opts.spectral_norm_d,
               "equalized_lr": opts.equalized_lr, "pack": 1}
    for key in ("width_g", "width_d"):
        if getattr(opts, key) is not None:
            changes[key] = getattr(opts, key)
    if opts.init is not None:
        changes["init"] = opts.init
    cfg = replace(defaults, **changes)
    gan: GAN = entry.builder(cfg, info)
    return Backbone(gan.G, gan.D, arch, z_dim, cfg.init)


def finish_heads(heads: nn.Module, backbone: Backbone, opts: ModelOptions) -> nn.Module:
    """New layers on D get the backbone's initialisation (or equalized learning rate) and,
    with model.spectral_norm_d, spectral norm (embeddings included, as in Miyato & Koyama's
    projection)."""
    init_weights(heads, backbone.init)
    if opts.equalized_lr:
        add_equalized_lr(heads)
    if opts.spectral_norm_d:
        for layer in list(heads.modules()):
            if isinstance(layer, (*WEIGHTED_LAYERS, nn.Embedding)):
                spectral_norm(layer)
    return heads


class ClassifierDiscriminator(nn.Module):
    """(score, class logits) from one pass through the backbone's trunk."""

    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.classes = nn.Linear(backbone.feature_dim, num_classes)

    def forward(self, x):
        features = self.backbone.features(x)
        return self.backbone.score(features), self.classes(features)


def one_hot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return nn.functional.one_hot(y, num_classes).float()

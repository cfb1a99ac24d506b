"""Optimizers, one per parameter group of a model family (a GAN's g and d). `lr` and `betas`
set all; `lr_g` / `lr_d` and `betas_g` / `betas_d` override them for G and D (TTUR, Heusel et
al. 2017). The same block picks the learning-rate schedule and the gradient-norm clipping
applied to every group."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gancli.config import require_positive
from gancli.errors import ConfigError
from gancli.registry import OPTIMIZERS
from gancli.training.schedules import Schedule


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 2e-4  # learning rate of every network
    lr_g: float | None = None  # G's learning rate; null: lr
    lr_d: float | None = None  # D's learning rate; null: lr
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # adam
    betas_g: list[float] | None = None  # per-network betas; None: use betas
    betas_d: list[float] | None = None  # D's betas; None: use betas
    momentum: float = 0.0  # sgd
    alpha: float = 0.99  # rmsprop smoothing
    weight_decay: float = 0.0  # L2 weight decay of every network
    schedule: Schedule = Schedule.constant  # learning-rate schedule over train.steps
    # schedule=linear: the share of train.steps at the full rate before the linear decay to 0
    # (CycleGAN's 100 + 100 epochs: 0.5)
    decay_start: float = 0.0
    max_grad_norm: float | None = None  # clip each network's gradient norm to this

    def __post_init__(self):
        for key in ("lr", "lr_g", "lr_d"):
            require_positive(f"optimizer.{key}", getattr(self, key))
        for key in ("betas", "betas_g", "betas_d"):
            betas = getattr(self, key)
            if betas is not None and (len(betas) != 2 or not all(0 <= b < 1 for b in betas)):
                raise ConfigError(f"optimizer.{key} must be two numbers in [0, 1), got {betas}")
        require_positive("optimizer.max_grad_norm", self.max_grad_norm)
        if not 0 <= self.decay_start < 1:
            raise ConfigError(f"optimizer.decay_start must be a share of train.steps in "
                              f"[0, 1), got {self.decay_start}")

    def lr_for(self, group: str) -> float:
        """The learning rate of a family's parameter group: lr_g / lr_d for the groups named
        g and d, when set; lr otherwise."""
        override = getattr(self, f"lr_{group}", None) if group in ("g", "d") else None
        return self.lr if override is None else override

    def betas_for(self, group: str) -> tuple[float, float]:
        override = getattr(self, f"betas_{group}", None) if group in ("g", "d") else None
        return tuple(self.betas if override is None else override)


def _fused(params: list) -> bool:
    """Fused kernels (one launch for all parameters) where PyTorch has them: CUDA tensors.
    Elsewhere PyTorch's default (foreach on CUDA, a loop on the CPU) applies."""
    return bool(params) and all(p.is_cuda for p in params)


@OPTIMIZERS.register("adam", OptimizerConfig)
def build_adam(cfg: OptimizerConfig, params, net: str) -> torch.optim.Optimizer:
    params = list(params)
    return torch.optim.Adam(params, lr=cfg.lr_for(net), betas=cfg.betas_for(net),
                            weight_decay=cfg.weight_decay, fused=_fused(params) or None)


@OPTIMIZERS.register("rmsprop", OptimizerConfig)
def build_rmsprop(cfg: OptimizerConfig, params, net: str) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=cfg.lr_for(net), alpha=cfg.alpha,
                               weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("sgd", OptimizerConfig)
def build_sgd(cfg: OptimizerConfig, params, net: str) -> torch.optim.Optimizer:
    params = list(params)
    return torch.optim.SGD(params, lr=cfg.lr_for(net), momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, fused=_fused(params) or None)


def build_optimizer(cfg: OptimizerConfig, params, net: str) -> torch.optim.Optimizer:
    """`net` names the parameter group (g, d, or a family's own group)."""
    return OPTIMIZERS.get(cfg.name).builder(cfg, params, net)

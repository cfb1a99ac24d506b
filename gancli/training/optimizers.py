"""Optimizers for G and D. `lr` sets both; `lr_g` / `lr_d` override it per network (TTUR)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gancli.errors import ConfigError
from gancli.registry import OPTIMIZERS


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 2e-4
    lr_g: float | None = None
    lr_d: float | None = None
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # adam
    momentum: float = 0.0  # sgd
    alpha: float = 0.99  # rmsprop smoothing
    weight_decay: float = 0.0

    def __post_init__(self):
        for key in ("lr", "lr_g", "lr_d"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"optimizer.{key} must be > 0, got {value}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optimizer.betas must be two numbers in [0, 1), got {self.betas}")

    def lr_for(self, net: str) -> float:
        override = self.lr_g if net == "g" else self.lr_d
        return self.lr if override is None else override


@OPTIMIZERS.register("adam", OptimizerConfig)
def build_adam(cfg: OptimizerConfig, params, net: str) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr_for(net), betas=tuple(cfg.betas),
                            weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("rmsprop", OptimizerConfig)
def build_rmsprop(cfg: OptimizerConfig, params, net: str) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=cfg.lr_for(net), alpha=cfg.alpha,
                               weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("sgd", OptimizerConfig)
def build_sgd(cfg: OptimizerConfig, params, net: str) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr_for(net), momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def build_optimizer(cfg: OptimizerConfig, params, net: str) -> torch.optim.Optimizer:
    """net is 'g' or 'd'."""
    return OPTIMIZERS.get(cfg.name).builder(cfg, params, net)

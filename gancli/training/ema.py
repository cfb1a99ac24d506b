"""An exponential moving average of G's weights: the copy that gets sampled and checkpointed
(as `g_ema`). Averaging over the last updates removes much of the jitter that adversarial
training leaves in the weights (Yazici et al. 2019; StyleGAN, BigGAN).

`train.ema.decay` sets the per-step weight of the old average directly; `train.ema.half_life`
sets it in images seen, as StyleGAN does (the weight of an update halves after that many
images), so it stays meaningful when the batch size changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from gancli.errors import ConfigError


@dataclass
class EMAConfig:
    decay: float | None = None  # e.g. 0.999; null with half_life null: no EMA
    half_life: float | None = None  # in images, e.g. 10000 (StyleGAN's ema_kimg=10)
    start: int = 0  # the copy follows G exactly until this step (BigGAN's ema_start)

    def __post_init__(self):
        if self.decay is not None and self.half_life is not None:
            raise ConfigError("set only one of train.ema.decay and train.ema.half_life")
        if self.decay is not None and not 0 <= self.decay < 1:
            raise ConfigError(f"train.ema.decay must be in [0, 1), got {self.decay}")
        if self.half_life is not None and self.half_life <= 0:
            raise ConfigError(f"train.ema.half_life must be > 0 images, got {self.half_life}")
        if self.start < 0:
            raise ConfigError(f"train.ema.start must be >= 0, got {self.start}")

    @property
    def enabled(self) -> bool:
        return self.decay is not None or self.half_life is not None

    def beta(self, batch_size: int) -> float:
        """Weight of the old average at each update of `batch_size` images."""
        if self.half_life is not None:
            return 0.5 ** (batch_size / self.half_life)
        return float(self.decay or 0.0)


class EMA:
    def __init__(self, G: nn.Module, beta: float, start: int = 0):
        self.G = copy.deepcopy(G).eval().requires_grad_(False)
        self.beta, self.start = beta, start

    @torch.no_grad()
    def update(self, G: nn.Module, step: int) -> None:
        """Average in G's weights after update number `step` (from 1). Buffers (BatchNorm
        statistics) are copied: they are already averages."""
        weight = 1.0 - (self.beta if step > self.start else 0.0)
        for p_ema, p in zip(self.G.parameters(), G.parameters(), strict=True):
            p_ema.lerp_(p, weight)
        for b_ema, b in zip(self.G.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)

    def state_dict(self) -> dict:
        return self.G.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state)


def build_ema(G: nn.Module, cfg: EMAConfig, batch_size: int) -> EMA | None:
    """The EMA copy of G that `cfg` asks for, or None when train.ema is off."""
    return EMA(G, cfg.beta(batch_size), cfg.start) if cfg.enabled else None

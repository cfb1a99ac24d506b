"""An exponential moving average of the weights of a family's sampler (G for a GAN, the
decoder for an autoencoder): the copy that gets sampled and checkpointed (as "ema"). Averaging
over the last updates removes much of the jitter that adversarial training leaves in the weights
(Yazici et al. 2019; StyleGAN, BigGAN).

`train.ema.decay` sets the per-step weight of the old average directly; `train.ema.half_life`
sets it in images seen, as StyleGAN does (the weight of an update halves after that many
images), so it stays meaningful when the batch size changes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from gancli.config import EMAConfig


class EMA:
    def __init__(self, G: nn.Module, beta: float | Callable[[int], float], start: int = 0):
        """`beta`: the old average's weight, or a function of the step giving it (rampup)."""
        self.G = copy.deepcopy(G).eval().requires_grad_(False)
        self.beta, self.start = beta, start

    @torch.no_grad()
    def update(self, G: nn.Module, step: int) -> None:
        """Average in G's weights after update number `step` (from 1). Buffers (BatchNorm
        statistics) are copied: they are already averages."""
        beta = self.beta(step) if callable(self.beta) else self.beta
        weight = 1.0 - (beta if step > self.start else 0.0)
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
    if not cfg.enabled:
        return None
    if cfg.rampup is not None:  # the half-life grows with the images seen, up to half_life
        return EMA(G, lambda step: cfg.beta(batch_size, step * batch_size), cfg.start)
    return EMA(G, cfg.beta(batch_size), cfg.start)

"""The interface the training step uses; losses work on raw discriminator scores.

Every loss config derives from `RegularizerConfig`, so the gradient penalty, R1 and their lazy
application (`loss.gp`, `loss.r1`, `loss.reg_every`), and the orthogonal regulariser of G
(`loss.ortho`), work with every loss the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gancli.config import require_non_negative, require_positive
from gancli.errors import ConfigError
from gancli.losses.penalties import (
    gradient_penalty,
    layer_weights,
    orthogonal_penalty,
    r1_penalty,
)


@dataclass
class RegularizerConfig:
    gp: float = 0.0  # weight of the WGAN-GP gradient penalty (lambda; 10 in the paper)
    r1: float = 0.0  # gamma of the R1 penalty gamma/2 * ||grad D(real)||^2
    reg_every: int = 1  # lazy regularisation: penalties every k D steps, weighted by k
    pl_weight: float = 0.0  # StyleGAN2's path-length regulariser on G (model=stylegan2; 2)
    pl_every: int = 4  # lazy path-length regularisation: every k steps, weighted by k
    # beta of BigGAN's off-diagonal orthogonal regulariser on G's weights (1e-4 there; 0: off)
    ortho: float = 0.0

    def __post_init__(self):
        for key in ("gp", "r1", "pl_weight", "ortho"):
            require_non_negative(f"loss.{key}", getattr(self, key))
        if self.reg_every < 1:
            raise ConfigError(f"loss.reg_every must be >= 1, got {self.reg_every}")
        require_positive("loss.pl_every", self.pl_every)

    def double_backward_keys(self) -> list[str]:
        """The penalties set here that differentiate a gradient again (double backward)."""
        return [f"loss.{key}" for key in ("gp", "r1", "pl_weight") if getattr(self, key)]


class GanLoss:
    """`d_loss` and `g_loss` take raw D scores of shape (N,). Hooks let a loss add a penalty
    to D's objective or act after each D update (e.g. weight clipping)."""

    def __init__(self, reg: RegularizerConfig | None = None):
        self.reg = reg or RegularizerConfig()

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_penalty(self, gan, real_x, fake_x, y, step: int = 0) -> torch.Tensor | None:
        """Extra term for D's loss that needs D itself (gradient penalties). `step` counts D
        updates from 0; lazy regularisation applies the penalties when it is a multiple of
        reg_every, scaled by reg_every so their average strength stays the same."""
        reg = self.reg
        if (reg.gp == 0 and reg.r1 == 0) or step % reg.reg_every:
            return None
        total = real_x.new_zeros(())
        if reg.gp:
            total = total + reg.gp * gradient_penalty(gan, real_x, fake_x, y)
        if reg.r1:
            total = total + (reg.r1 / 2) * r1_penalty(gan, real_x, y)
        return total * reg.reg_every

    def g_penalty(self, gan) -> torch.Tensor | None:
        """Extra term for G's loss: loss.ortho times the orthogonal regulariser of the weights
        of G's linear and convolutional layers, halved so that its gradient is the reference's
        (BigGAN-PyTorch adds 2 * beta * (W W^T * (1 - I)) W to each weight's gradient)."""
        if self.reg.ortho == 0:
            return None
        return (self.reg.ortho / 2) * orthogonal_penalty(layer_weights(gan.G))

    def after_d_step(self, gan) -> None:
        """Called after every discriminator update."""

"""The interface the training step uses; losses work on raw discriminator scores."""

from __future__ import annotations

import torch


class GanLoss:
    """`d_loss` and `g_loss` take raw D scores of shape (N,). Hooks with no-op defaults let a
    loss add a penalty to D's objective or act after each D update (e.g. weight clipping)."""

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_penalty(self, gan, real_x, fake_x, y) -> torch.Tensor | None:
        """Extra term for D's loss that needs D itself (gradient penalties)."""
        return None

    def after_d_step(self, gan) -> None:
        """Called after every discriminator update."""

"""Plain supervised training and accuracy of a classifier, for SGAN's baseline: the same
network trained on the labeled items alone, which the semi-supervised one should beat."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Logits = Callable[[torch.Tensor], torch.Tensor]


def fit_classifier(net: nn.Module, logits: Logits, x: torch.Tensor, y: torch.Tensor,
                   steps: int, batch_size: int, lr: float, seed: int) -> None:
    """`steps` Adam updates (betas 0.5, 0.999, as the GAN's D) of cross-entropy on random
    batches of (x, y), drawn from a generator seeded with `seed`."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    batch_size = min(batch_size, len(x))
    net.train()
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=gen)[:batch_size].to(x.device)
        loss = F.cross_entropy(logits(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()


@torch.no_grad()
def accuracy(logits: Logits, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of (x, y) whose arg-max logit is y."""
    correct = 0
    for start in range(0, len(x), batch_size):
        pred = logits(x[start:start + batch_size]).argmax(dim=1)
        correct += int((pred == y[start:start + batch_size]).sum())
    return correct / max(len(x), 1)

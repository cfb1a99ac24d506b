"""Differentiable augmentation of everything D sees (DiffAugment, Zhao et al. 2020).

The same random transforms are applied to real and generated images, in D's update and in
G's, so D never learns the augmentations as a feature of real data and G gets gradients through
them. Each op works on a batch in [-1, 1] with per-sample random parameters, on whatever device
the batch is on: with the small datasets held on the GPU, no image leaves it.

`train.augment=[color,translation,cutout]` is DiffAugment's policy for small data; `flip` is a
random horizontal mirror (for data where mirroring keeps an image realistic: faces, CIFAR).
"""

from __future__ import annotations

import torch

from gancli.config import Augment


def _uniform(x: torch.Tensor) -> torch.Tensor:
    """One U[0, 1) number per sample, shaped to broadcast over an image."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def flip(x: torch.Tensor) -> torch.Tensor:
    mirror = _uniform(x) < 0.5
    return torch.where(mirror, x.flip(3), x)


def color(x: torch.Tensor) -> torch.Tensor:
    x = x + (_uniform(x) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x) + 0.5) + mean  # contrast


def _offsets(n: int, limit: int, device: torch.device) -> torch.Tensor:
    return torch.randint(-limit, limit + 1, (n, 1, 1), device=device)


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    dy = _offsets(n, int(h * ratio + 0.5), x.device)
    dx = _offsets(n, int(w * ratio + 0.5), x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    # read from a copy padded with one ring of zeros: indices that leave the image land on it
    rows = (rows + dy + 1).clamp(0, h + 1).expand(n, h, w)
    cols = (cols + dx + 1).clamp(0, w + 1).expand(n, h, w)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # the square's centre is anywhere in the image; the square may hang over the edge
    top = torch.randint(0, h, (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w, (n, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


OPS = {Augment.flip: flip, Augment.color: color, Augment.translation: translation,
       Augment.cutout: cutout}


class DiffAugment:
    """Applies the chosen ops in the order given."""

    def __init__(self, ops: list[Augment]):
        self.ops = [OPS[Augment(op)] for op in ops]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op(x)
        return x

    def __bool__(self) -> bool:
        return bool(self.ops)


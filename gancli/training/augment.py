"""Differentiable augmentation of everything D sees (DiffAugment, Zhao et al. 2020).

The same random transforms are applied to real and generated images, in D's update and in
G's, so D never learns the augmentations as a feature of real data and G gets gradients through
them. Each op works on a batch in [-1, 1] with per-sample random parameters, on whatever device
the batch is on: with the small datasets held on the GPU, no image leaves it.

`train.augment=[color,translation,cutout]` is DiffAugment's policy for small data; `flip` is a
random horizontal mirror (for data where mirroring keeps an image realistic: faces, CIFAR);
`rotate90` turns by a multiple of 90 degrees (square images).

`train.augment_p` is the chance that each op touches each image (1: always, as DiffAugment
does). `train.augment_p=ada` adapts it as StyleGAN2-ADA (Karras et al. 2020) does: every
`train.ada_interval` steps, r_t = E[sign(D(real))] over those steps is compared with
`train.ada_target` and p moves up (D overfits: real scores all positive) or down by
batch x interval / (ada_kimg x 1000), so p can cross [0, 1] in ada_kimg thousand images.
"""

from __future__ import annotations

import torch

from gancli.config import Augment
from gancli.training.distributed import sum_over_ranks


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


def rotate90(x: torch.Tensor) -> torch.Tensor:
    turns = torch.randint(0, 4, (x.shape[0], 1, 1, 1), device=x.device)
    for k in (1, 2, 3):
        x = torch.where(turns == k, x.rot90(k, dims=(2, 3)), x)
    return x


OPS = {Augment.flip: flip, Augment.color: color, Augment.translation: translation,
       Augment.cutout: cutout, Augment.rotate90: rotate90}


class DiffAugment:
    """Applies the chosen ops in the order given, each to each image with probability `p`
    (a constant, or adapted by `AdaptiveP`)."""

    def __init__(self, ops: list[Augment], p: float = 1.0):
        self.ops = [OPS[Augment(op)] for op in ops]
        self.p = p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            if self.p >= 1:
                x = op(x)
            elif self.p > 0:
                x = torch.where(_uniform(x) < self.p, op(x), x)
        return x

    def __bool__(self) -> bool:
        return bool(self.ops)


class AdaptiveP:
    """ADA's controller of `augment.p`: D's real scores go in through `observe`; `adjust`
    moves p every `interval` steps. Its state is checkpointed with the update state."""

    def __init__(self, augment: DiffAugment, target: float, interval: int, kimg: float,
                 batch_size: int):
        self.augment, self.target, self.interval = augment, target, interval
        self.step_size = batch_size * interval / (kimg * 1000)  # batch_size: the global one
        self.augment.p = 0.0  # StyleGAN2-ADA starts without augmentation
        self.signs = self.count = None  # on the scores' device: no host sync per step
        self.r_t = float("nan")

    def observe(self, real_scores: torch.Tensor) -> None:
        signs = real_scores.detach().float().sign()
        if self.signs is None:
            self.signs, self.count = signs.sum(), signs.new_tensor(float(signs.numel()))
        else:
            self.signs, self.count = self.signs + signs.sum(), self.count + signs.numel()

    def adjust(self, step: int) -> None:
        if step % self.interval:
            return
        if self.signs is None:
            raise RuntimeError("train.augment_p=ada needs D's scores of real images, and this "
                               "model reported none")
        signs, count = sum_over_ranks(torch.stack([self.signs, self.count])).tolist()
        self.r_t = signs / count
        direction = (self.r_t > self.target) - (self.r_t < self.target)
        self.augment.p = min(1.0, max(0.0, self.augment.p + direction * self.step_size))
        self.signs = self.count = None

    def state_dict(self) -> dict:
        """p, the last r_t, and the signs gathered since the last adjustment (a checkpoint
        may fall inside an interval)."""
        gathered = None if self.signs is None else torch.stack([self.signs, self.count]).cpu()
        return {"p": self.augment.p, "r_t": self.r_t, "gathered": gathered}

    def load_state_dict(self, state: dict) -> None:
        self.augment.p, self.r_t = state["p"], state["r_t"]
        self.signs = self.count = None
        if state["gathered"] is not None:
            self.signs, self.count = state["gathered"].unbind()


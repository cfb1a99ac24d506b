"""Turning samples into pictures: image grids, and scatter plots for 2D point data."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

FAKE_COLOR = torch.tensor([220, 40, 40], dtype=torch.uint8)
REAL_COLOR = torch.tensor([160, 160, 160], dtype=torch.uint8)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 pixels."""
    return x.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def image_grid(x: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """Images in [-1, 1] (N, C, H, W) -> one uint8 (C, H', W') grid on a white background.
    (Written here rather than torchvision's make_grid: importing torchvision costs seconds.)"""
    n, c, h, w = x.shape
    nrow = nrow or max(1, round(n ** 0.5))
    rows = -(-n // nrow)
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), 255,
                      dtype=torch.uint8)
    for i, image in enumerate(to_uint8(x)):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[:, top:top + h, left:left + w] = image
    return grid


def scatter_image(fake: torch.Tensor, real: torch.Tensor | None = None, size: int = 384,
                  margin: float = 0.1) -> torch.Tensor:
    """2D points -> uint8 (3, size, size): real points grey, generated points red."""
    fake = fake.detach().float().cpu()
    both = fake if real is None else torch.cat([real.float().cpu(), fake])
    lo, hi = both.quantile(0.001, dim=0), both.quantile(0.999, dim=0)
    span = (hi - lo).max().clamp_min(1e-6)
    center = (hi + lo) / 2
    lo = center - span * (0.5 + margin)
    scale = (size - 1) / (span * (1 + 2 * margin))
    canvas = torch.full((size, size, 3), 255, dtype=torch.uint8)
    for points, color in ((real, REAL_COLOR), (fake, FAKE_COLOR)):
        if points is None:
            continue
        pix = ((points.float().cpu() - lo) * scale).round().long()
        keep = ((pix >= 0) & (pix < size)).all(dim=1)
        col, row = pix[keep, 0], size - 1 - pix[keep, 1]  # y axis points up
        for dr in (0, 1):  # 2x2 dots stay visible when the image is scaled down
            for dc in (0, 1):
                canvas[(row + dr).clamp(max=size - 1), (col + dc).clamp(max=size - 1)] = color
    return canvas.permute(2, 0, 1)


def render(samples: torch.Tensor, kind: str, real: torch.Tensor | None = None,
           nrow: int | None = None) -> torch.Tensor:
    return scatter_image(samples, real) if kind == "points" else image_grid(samples, nrow)


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Save a uint8 (C, H, W) image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image.permute(1, 2, 0).numpy()
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path)
    return path

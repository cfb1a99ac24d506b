"""The 2D Gaussian mixtures of PacGAN (Lin et al. 2018), the standard mode-collapse tests.

ring8: 8 modes on the unit circle, std 0.01. grid25: modes at {-4,-2,0,2,4}^2, std 0.05.
Points keep PacGAN's coordinates (not rescaled to [-1, 1]); the MLP generator's output is linear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gancli.data.base import DataInfo, TensorData
from gancli.data.splits import SplitOptions
from gancli.errors import ConfigError
from gancli.registry import DATASETS


@dataclass
class RingConfig(SplitOptions):
    name: str = "ring8"
    modes: int = 8  # Gaussians on the circle
    radius: float = 1.0  # radius of the circle
    std: float = 0.01  # standard deviation of each Gaussian
    size: int = 100_000  # points drawn once, with data_seed
    data_seed: int = 0  # seed of the drawn points; independent of `seed`


@dataclass
class GridConfig(SplitOptions):
    name: str = "grid25"
    side: int = 5  # side x side modes
    spacing: float = 2.0  # distance between neighbouring modes
    std: float = 0.05  # standard deviation of each Gaussian
    size: int = 100_000  # points drawn once, with data_seed
    data_seed: int = 0  # seed of the drawn points; independent of `seed`


def ring_means(modes: int, radius: float) -> torch.Tensor:
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def grid_means(side: int, spacing: float) -> torch.Tensor:
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(axis, axis)


def sample_mixture(means: torch.Tensor, std: float, size: int, seed: int):
    """size points from the equal-weight mixture; returns (points float32, mode index)."""
    if size <= 0 or std <= 0:
        raise ConfigError(f"dataset.size and dataset.std must be > 0, got {size} and {std}")
    gen = torch.Generator().manual_seed(seed)
    modes = torch.randint(len(means), (size,), generator=gen)
    noise = torch.randn(size, means.shape[1], generator=gen, dtype=torch.float64) * std
    return (means[modes] + noise).float(), modes


class MixtureData(TensorData):
    """Points of a Gaussian mixture; keeps the means and std for mode-coverage metrics."""

    def __init__(self, info: DataInfo, means: torch.Tensor, std: float, size: int, seed: int):
        points, modes = sample_mixture(means, std, size, seed)
        super().__init__(info, points, modes)
        self.means, self.std = means.float(), std


@DATASETS.register("ring8", RingConfig)
def build_ring(cfg: RingConfig) -> MixtureData:
    info = DataInfo("ring8", "points", (2,), cfg.modes)
    return MixtureData(info, ring_means(cfg.modes, cfg.radius), cfg.std, cfg.size, cfg.data_seed)


@DATASETS.register("grid25", GridConfig)
def build_grid(cfg: GridConfig) -> MixtureData:
    info = DataInfo("grid25", "points", (2,), cfg.side * cfg.side)
    means = grid_means(cfg.side, cfg.spacing)
    return MixtureData(info, means, cfg.std, cfg.size, cfg.data_seed)

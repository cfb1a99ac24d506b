"""Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of the squared MMD
with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

Computed in float64 with torch, so it runs on the GPU when the features are there.
"""

from __future__ import annotations

import numpy as np
import torch

from gancli.metrics.checks import require_finite


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 between equal-sized sets x and y (rows are samples)."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum())
    return float(within / (m * (m - 1)) - 2 * k_xy.mean())


def kid_subsets(n_real: int, n_fake: int, num_subsets: int, subset_size: int,
                seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Indices of each subset: `subset_size` rows of each set drawn without replacement,
    independently per subset, from a generator seeded by `seed`."""
    rng = np.random.default_rng(seed)
    return [(rng.choice(n_real, subset_size, replace=False),
             rng.choice(n_fake, subset_size, replace=False)) for _ in range(num_subsets)]


def used_subset_size(subset_size: int, n_real: int, n_fake: int) -> int:
    """The subset size KID can use: capped at the smaller set's size."""
    return min(subset_size, n_real, n_fake)


def kernel_inception_distance(real, fake, num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0, device: torch.device | str = "cpu"
                              ) -> tuple[float, float]:
    """Mean and standard deviation of the subset MMD^2 estimates. The subset size is capped at
    the smaller set's size (used_subset_size: callers record and report it)."""
    real = torch.as_tensor(require_finite(real, "the real features"), device=device)
    fake = torch.as_tensor(require_finite(fake, "the generated features"), device=device)
    m = used_subset_size(subset_size, real.shape[0], fake.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    values = [mmd2_unbiased(real[torch.as_tensor(i, device=device)],
                            fake[torch.as_tensor(j, device=device)])
              for i, j in kid_subsets(real.shape[0], fake.shape[0], num_subsets, m, seed)]
    return float(np.mean(values)), float(np.std(values))

"""Mode coverage of samples from a Gaussian mixture with known means and a shared std, as
measured in PacGAN (Lin et al. 2018, Table 1) and VEEGAN before it.

- modes captured: modes with at least one sample within `threshold` standard deviations;
- high quality: the fraction of samples within `threshold` std of their nearest mean;
- reverse KL: KL(q || uniform), where q is the histogram of high-quality samples over their
  nearest modes (0 when every mode gets the same share; log K when one mode gets all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ModeCoverage:
    modes: int
    high_quality: float  # fraction in [0, 1]
    reverse_kl: float  # nan when no sample is high quality


def distances_in_std(samples: torch.Tensor, means: torch.Tensor, std: float) -> torch.Tensor:
    """(N, K) Euclidean distance of every sample to every mean, in units of std."""
    return torch.cdist(samples.double(), means.double()) / std


def mode_histogram(samples: torch.Tensor, means: torch.Tensor, std: float,
                   threshold: float = 3.0) -> torch.Tensor:
    """(K,) number of high-quality samples whose nearest mean is each mode."""
    dist = distances_in_std(samples, means, std)
    nearest_dist, nearest = dist.min(dim=1)
    return torch.bincount(nearest[nearest_dist < threshold], minlength=means.shape[0])


def modes_captured(samples: torch.Tensor, means: torch.Tensor, std: float,
                   threshold: float = 3.0) -> int:
    dist = distances_in_std(samples, means, std)
    return int((dist < threshold).any(dim=0).sum())


def high_quality_fraction(samples: torch.Tensor, means: torch.Tensor, std: float,
                          threshold: float = 3.0) -> float:
    dist = distances_in_std(samples, means, std)
    return float((dist.min(dim=1).values < threshold).double().mean())


def reverse_kl_to_uniform(histogram: torch.Tensor) -> float:
    """KL(q || uniform) for q = histogram / its sum; nan for an empty histogram."""
    total = histogram.sum()
    if total == 0:
        return math.nan
    q = histogram[histogram > 0].double() / total
    return float((q * (q * histogram.numel()).log()).sum())


def mode_coverage(samples: torch.Tensor, means: torch.Tensor, std: float,
                  threshold: float = 3.0) -> ModeCoverage:
    return ModeCoverage(
        modes=modes_captured(samples, means, std, threshold),
        high_quality=high_quality_fraction(samples, means, std, threshold),
        reverse_kl=reverse_kl_to_uniform(mode_histogram(samples, means, std, threshold)),
    )

"""Mode coverage of samples from a Gaussian mixture with known means and a shared std, as
measured in PacGAN (Lin et al. 2018, Table 1) and VEEGAN before it; and of samples whose mode
a classifier names (Stacked MNIST, PacGAN Table 3).

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


@dataclass(frozen=True)
class LabelCoverage:
    modes: int  # modes with at least one sample
    reverse_kl: float  # KL(histogram || uniform); nan for no samples
    histogram: torch.Tensor  # (K,) samples per mode


def label_coverage(labels: torch.Tensor, num_modes: int) -> LabelCoverage:
    """Coverage of the modes 0..num_modes-1 by samples classified as `labels` (N,)."""
    histogram = torch.bincount(labels.flatten().long(), minlength=num_modes)
    if histogram.numel() != num_modes:
        raise ValueError(f"labels must lie in 0..{num_modes - 1}, got {int(labels.max())}")
    return LabelCoverage(int((histogram > 0).sum()), reverse_kl_to_uniform(histogram), histogram)


@torch.no_grad()
def classify_stacked(classifier, images: torch.Tensor) -> torch.Tensor:
    """Stacked MNIST images (N, 3, H, W) -> mode labels (N,) in 0..999: `classifier` (an
    MnistClassifier) names each channel's digit, the red one the hundreds."""
    from gancli.data.stacked_mnist import triple_labels

    digits = torch.stack([classifier.predict(images[:, c:c + 1]) for c in range(3)], dim=1)
    return triple_labels(digits.cpu())

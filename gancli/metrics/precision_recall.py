"""Improved precision and recall (Kynkäänniemi et al. 2019).

Each sample's k-NN ball has the radius of the distance to its k-th nearest neighbour within its
own set. Precision is the share of generated samples inside at least one real ball (quality);
recall is the share of real samples inside at least one generated ball (coverage).
"""

from __future__ import annotations

import torch

from gancli.metrics.checks import require_finite

ROWS_PER_BLOCK = 1024  # distance rows held at once: memory stays O(block x n)


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b).clamp_min_(0)


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row."""
    if x.shape[0] <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples, got {x.shape[0]}")
    # the k+1-th smallest distance skips the row itself (distance 0)
    return torch.cat([_distances(x[i:i + ROWS_PER_BLOCK], x).kthvalue(k + 1, dim=1).values
                      for i in range(0, x.shape[0], ROWS_PER_BLOCK)])


def coverage(points: torch.Tensor, centers: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of `points` inside at least one ball (centers, radii)."""
    inside = [(_distances(points[i:i + ROWS_PER_BLOCK], centers) <= radii).any(dim=1)
              for i in range(0, points.shape[0], ROWS_PER_BLOCK)]
    return float(torch.cat(inside).double().mean())


def precision_recall(real, fake, k: int = 3,
                     device: torch.device | str = "cpu") -> tuple[float, float]:
    real = torch.as_tensor(require_finite(real, "the real features"), device=device)
    fake = torch.as_tensor(require_finite(fake, "the generated features"), device=device)
    precision = coverage(fake, real, knn_radii(real, k))
    recall = coverage(real, fake, knn_radii(fake, k))
    return precision, recall

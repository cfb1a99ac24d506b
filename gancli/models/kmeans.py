"""k-means on a (N, F) tensor, seeded, in torch: the self-conditioned GAN's clustering.

k-means++ seeding (Arthur & Vassilvitskii 2007) or a warm start from a previous assignment,
then Lloyd's iterations until no point changes cluster. A cluster left empty is reseeded with
the point farthest from every centroid, so all k stay in use.
"""

from __future__ import annotations

import torch

CHUNK = 4096  # rows whose distances to the centroids are computed at once


def nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The index of each row's nearest centroid (squared Euclidean distance)."""
    return torch.cat([_distances(part, centroids).argmin(dim=1) for part in x.split(CHUNK)])


def _distances(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    # |x|^2 - 2 x.c + |c|^2, without the (N, k, F) difference tensor
    d = (x * x).sum(1, keepdim=True) - 2 * x @ centroids.T + (centroids * centroids).sum(1)
    return d.clamp_(min=0)


def _plus_plus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++: each next centroid is a point drawn with probability proportional to its
    squared distance to the nearest centroid chosen so far."""
    first = torch.randint(len(x), (1,), generator=gen, device=gen.device)
    centroids = [x[first]]
    closest = _distances(x, centroids[0]).squeeze(1)
    for _ in range(1, k):
        weights = closest if closest.sum() > 0 else torch.ones_like(closest)
        pick = torch.multinomial(weights, 1, generator=gen)
        centroids.append(x[pick])
        closest = torch.minimum(closest, _distances(x, x[pick]).squeeze(1))
    return torch.cat(centroids)


def _means(x: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Each cluster's mean; an empty cluster takes, one at a time, the point farthest from
    every centroid so far (the greedy farthest-point rule)."""
    counts = torch.bincount(labels, minlength=k)
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, labels, x)
    means = sums / counts.clamp(min=1).unsqueeze(1).to(x.dtype)
    filled = counts > 0
    for c in (~filled).nonzero().flatten().tolist():
        means[c] = x[_distances(x, means[filled]).min(dim=1).values.argmax()]
        filled[c] = True
    return means


def kmeans(x: torch.Tensor, k: int, iters: int, gen: torch.Generator,
           init_labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(centroids (k, F), each row's cluster (N,)) after at most `iters` Lloyd iterations.
    `init_labels` (a previous clustering of the same rows) starts from that clustering's means,
    so cluster c stays, as far as the data allow, cluster c; else k-means++ seeds it."""
    if not 1 <= k <= len(x):
        raise ValueError(f"k-means needs 1 <= k <= {len(x)} points, got k={k}")
    centroids = (_means(x, init_labels, k) if init_labels is not None
                 else _plus_plus(x, k, gen))
    labels = nearest(x, centroids)
    for _ in range(iters):
        centroids = _means(x, labels, k)
        new = nearest(x, centroids)
        if torch.equal(new, labels):
            break
        labels = new
    return centroids, labels

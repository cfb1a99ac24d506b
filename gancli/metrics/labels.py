"""Measures of how well generated samples follow their labels or codes, judged by a classifier:
the accuracy of a conditional G at its requested classes, and the mutual information between a
categorical code and the classifier's predicted class (InfoGAN). Pure functions of label
tensors; benchmarks/labels.py draws the samples and runs the classifier.
"""

from __future__ import annotations

import math

import torch


def contingency(a: torch.Tensor, b: torch.Tensor, ka: int, kb: int) -> torch.Tensor:
    """Counts (ka, kb) of the pairs (a_i, b_i)."""
    return torch.bincount(a.long() * kb + b.long(), minlength=ka * kb).reshape(ka, kb).double()


def mutual_information(a: torch.Tensor, b: torch.Tensor, ka: int, kb: int) -> float:
    """Plug-in estimate of I(a; b) in nats from paired samples of two discrete variables:
    sum p(a, b) log(p(a, b) / (p(a) p(b))) over their empirical joint distribution."""
    joint = contingency(a, b, ka, kb)
    joint /= joint.sum()
    outer = joint.sum(dim=1, keepdim=True) * joint.sum(dim=0, keepdim=True)
    nonzero = joint > 0
    return float((joint[nonzero] * (joint[nonzero] / outer[nonzero]).log()).sum())


def chance_mutual_information(a: torch.Tensor, b: torch.Tensor, ka: int, kb: int,
                              shuffles: int = 20, seed: int = 0) -> float:
    """The estimate's value when a and b are independent but keep their marginals: its mean
    over random re-pairings of a with b. The plug-in estimate is biased upwards by about
    (ka - 1)(kb - 1) / (2 N) nats, so this, not 0, is the level to beat."""
    gen = torch.Generator().manual_seed(seed)
    values = [mutual_information(a[torch.randperm(len(a), generator=gen)], b, ka, kb)
              for _ in range(shuffles)]
    return sum(values) / len(values)


def best_matching_accuracy(a: torch.Tensor, b: torch.Tensor, ka: int, kb: int) -> float:
    """The fraction of pairs that agree under the best one-to-one map from values of a to
    values of b (Hungarian algorithm): how cleanly a code separates the classes."""
    from scipy.optimize import linear_sum_assignment

    joint = contingency(a, b, ka, kb).numpy()
    rows, cols = linear_sum_assignment(-joint)
    return float(joint[rows, cols].sum() / joint.sum())


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2)


def per_class_accuracy(requested: torch.Tensor, predicted: torch.Tensor,
                       num_classes: int) -> list[float]:
    """For each class, the fraction of samples asked to be of it that were classified as it."""
    return [float((predicted[requested == c] == c).double().mean()) if (requested == c).any()
            else math.nan for c in range(num_classes)]

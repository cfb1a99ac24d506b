"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), computed on each of
`splits` consecutive chunks of the samples; returns the mean and standard deviation over chunks.

For the FID Inception the logits are pool3 features times the final layer's weight, without
its bias, as in the original TensorFlow code.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    p = softmax(np.asarray(logits, dtype=np.float64))
    n = p.shape[0]
    if n < splits:
        raise ValueError(f"the Inception Score needs at least {splits} samples, got {n}")
    scores = []
    for k in range(splits):
        part = p[k * n // splits:(k + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        # 0 * log 0 counts as 0: a class with zero probability adds nothing
        kl = np.where(part > 0, part * (np.log(np.where(part > 0, part, 1)) - np.log(marginal)), 0)
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))

"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), computed on each of
`splits` consecutive chunks of the samples; returns the mean and standard deviation over chunks.

Computed in log space: log p(y|x) by log-softmax and log p(y) by log-sum-exp over the chunk,
so very confident logits (probabilities that underflow to 0, marginals that underflow with
them) give the right, finite score instead of inf.

For the FID Inception the logits are pool3 features times the final layer's weight, without
its bias, as in the original TensorFlow code.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from gancli.metrics.checks import require_finite


def log_softmax(logits: np.ndarray) -> np.ndarray:
    return logits - logsumexp(logits, axis=1, keepdims=True)


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64)))


def inception_score(logits, splits: int = 10, what: str = "the logits") -> tuple[float, float]:
    logits = require_finite(logits, what)
    if logits.ndim != 2:
        raise ValueError(f"the Inception Score needs (N, classes) logits, got {logits.shape}")
    with np.errstate(over="ignore"):  # logits near the float limit: -inf log-probabilities
        log_p = log_softmax(logits)
    n = log_p.shape[0]
    if n < splits:
        raise ValueError(f"the Inception Score needs at least {splits} samples, got {n}")
    scores = []
    for k in range(splits):
        part = log_p[k * n // splits:(k + 1) * n // splits]
        log_marginal = logsumexp(part, axis=0, keepdims=True) - np.log(part.shape[0])
        # p log(p / m); 0 log 0 counts as 0 (a log-probability of -inf after rounding)
        with np.errstate(invalid="ignore", over="ignore"):
            terms = np.where(np.isneginf(part), 0.0, np.exp(part) * (part - log_marginal))
        scores.append(np.exp(terms.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))

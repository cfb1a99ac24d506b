"""Fréchet distance between Gaussians fitted to two sets of features (FID when the features
are Inception pool3 activations). Everything in float64.

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

The trace of the matrix square root is taken from the eigenvalues of the symmetric matrix
F^T S2 F, where S1 = F F^T (pivoted Cholesky), which has the nonzero eigenvalues of S1 S2.
Unlike `scipy.linalg.sqrtm` of the non-symmetric product (what pytorch-fid uses), this cannot
produce complex values or NaNs when the covariances are rank-deficient (fewer samples than
dimensions, or a collapsed generator), and it is many times faster at 2048-d
(benchmarks/fid_speed.py).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from gancli.metrics.checks import require_finite


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (rows are samples), as pytorch-fid computes them."""
    x = require_finite(features, "the features")
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need at least 2 feature rows, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def psd_factor(sigma: np.ndarray) -> np.ndarray:
    """F (d x rank) with F F^T = sigma, for symmetric positive semi-definite sigma: Cholesky
    with complete pivoting (LAPACK dpstrf), which stops at the numerical rank. As fast as a
    plain Cholesky at full rank, and faster still for the rank-deficient covariances of
    fewer samples than dimensions."""
    sigma = np.ascontiguousarray((sigma + sigma.T) / 2)
    c, pivots, rank, info = lapack.dpstrf(sigma, lower=1)
    if info < 0:
        raise ValueError(f"dpstrf rejected its argument {-info}")
    lower = np.tril(c)[:, :rank]
    factor = np.empty_like(lower)
    factor[pivots - 1] = lower  # undo the pivoting: sigma = P L L^T P^T
    return factor


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^(1/2)) for symmetric PSD S1 = F F^T and S2: S1 S2 has the eigenvalues of
    the symmetric PSD matrix F^T S2 F, so they are real and >= 0 up to rounding."""
    factor = psd_factor(sigma1)
    middle = factor.T @ sigma2 @ factor
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        require_finite(value, f"the Gaussian statistics ({name})")
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
                 - 2 * trace_sqrt_product(sigma1, sigma2))

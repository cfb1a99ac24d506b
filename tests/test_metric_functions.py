"""The metric functions against direct float64 implementations of their published definitions,
on fixed random features (no network involved)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance as pytorch_fid_distance

from gancli.metrics.frechet import frechet_distance, gaussian_stats, psd_factor
from gancli.metrics.inception_score import inception_score
from gancli.metrics.kid import kernel_inception_distance, kid_subsets
from gancli.metrics.precision_recall import precision_recall


def features(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, scale, (n, d))


# --- Fréchet distance -------------------------------------------------------------------

def test_gaussian_stats_match_numpy_mean_and_unbiased_covariance():
    x32 = features(50, 4, 0).astype(np.float32)  # extractors give float32 features
    mu, sigma = gaussian_stats(x32)
    assert mu.dtype == sigma.dtype == np.float64  # accumulated in float64
    x = x32.astype(np.float64)
    np.testing.assert_allclose(mu, x.sum(0) / 50, rtol=1e-12)
    np.testing.assert_allclose(sigma, (x - x.mean(0)).T @ (x - x.mean(0)) / 49, rtol=1e-12)


def test_frechet_distance_agrees_with_pytorch_fid_on_well_conditioned_statistics():
    a, b = gaussian_stats(features(400, 32, 0)), gaussian_stats(features(400, 32, 1, 1.5, 0.3))
    ours = frechet_distance(*a, *b)
    assert ours == pytest.approx(pytorch_fid_distance(*a, *b), rel=1e-9)
    assert frechet_distance(*a, *a) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_of_1d_gaussians_is_the_closed_form():
    # d^2 = (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s1, s2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)


def exact_fid_from_samples(x: np.ndarray, y: np.ndarray) -> float:
    """Ground truth that needs no matrix square root: for covariances of centred samples
    X, Y (n-1 normalised), tr((S1 S2)^(1/2)) is the nuclear norm of X Y^T / (n-1), a small
    n x n matrix, so it stays exact when S1, S2 are singular."""
    n = x.shape[0]
    xc, yc = x - x.mean(0), y - y.mean(0)
    trace_sqrt = np.linalg.svd(xc @ yc.T / (n - 1), compute_uv=False).sum()
    diff = x.mean(0) - y.mean(0)
    return diff @ diff + (xc ** 2).sum() / (n - 1) + (yc ** 2).sum() / (n - 1) - 2 * trace_sqrt


def test_frechet_distance_is_exact_on_rank_deficient_ill_conditioned_covariances():
    # 20 samples in 256 dimensions whose scales span 1e-3..1e3: rank 19 covariances with a
    # condition number far beyond float64. scipy.linalg.sqrtm of S1 S2 (pytorch-fid's route)
    # returns large imaginary parts here ("Imaginary component" errors); the eigenvalue
    # route is exact to rounding.
    rng = np.random.default_rng(0)
    scales = 10.0 ** rng.uniform(-3, 3, 256)
    x = rng.standard_normal((20, 256)) * scales
    y = rng.standard_normal((20, 256)) * scales[::-1] + 0.5
    expected = exact_fid_from_samples(x, y)
    got = frechet_distance(*gaussian_stats(x), *gaussian_stats(y))
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_of_identical_singular_covariances_is_zero():
    x = features(10, 512, 3, scale=100.0)  # rank 9 of 512
    mu, sigma = gaussian_stats(x)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6 * np.trace(sigma)


@pytest.mark.parametrize("rows, rank", [(5, 5), (50, 8)])  # singular, full rank
def test_psd_factor_multiplies_back_and_stops_at_the_rank(rows, rank):
    a = features(rows, 8, 4)
    sigma = a.T @ a
    factor = psd_factor(sigma)
    assert factor.shape == (8, rank)
    np.testing.assert_allclose(factor @ factor.T, sigma, atol=1e-12 * np.abs(sigma).max())


# --- KID -------------------------------------------------------------------------------

def mmd2_by_definition(x: np.ndarray, y: np.ndarray) -> float:
    """Bińkowski et al. 2018, eq. for the unbiased MMD^2 estimator, written as sums over pairs
    with k(a, b) = (a.b / d + 1)^3."""
    m, d = x.shape

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_with_one_subset_of_everything_is_the_mmd_estimator():
    x, y = features(30, 8, 0), features(30, 8, 1, 1.3, 0.2)
    mean, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=30)
    assert mean == pytest.approx(mmd2_by_definition(x, y), rel=1e-10)
    assert std == 0


def test_kid_averages_the_estimator_over_seeded_subsets():
    x, y = features(40, 6, 2), features(50, 6, 3, 1.0, 0.5)
    mean, std = kernel_inception_distance(x, y, num_subsets=5, subset_size=12, seed=7)
    values = [mmd2_by_definition(x[i], y[j]) for i, j in kid_subsets(40, 50, 5, 12, seed=7)]
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values), rel=1e-8)
    # same seed, same subsets, same answer; another seed, other subsets
    assert kernel_inception_distance(x, y, 5, 12, seed=7) == (mean, std)
    assert kernel_inception_distance(x, y, 5, 12, seed=8)[0] != mean


def test_kid_subset_size_is_capped_by_the_smaller_set():
    x, y = features(8, 4, 0), features(9, 4, 1)
    assert np.isfinite(kernel_inception_distance(x, y, 3, 1000)[0])


# --- Inception Score ------------------------------------------------------------------

def is_by_definition(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """Salimans et al. 2016: exp(E_x KL(p(y|x) || p(y))) per split, written out per sample."""
    scores = []
    n = len(logits)
    for s in range(splits):
        part = logits[s * n // splits:(s + 1) * n // splits]
        p = [np.exp(row - row.max()) / np.exp(row - row.max()).sum() for row in part]
        marginal = np.mean(p, axis=0)
        kl = [sum(pi[c] * (np.log(pi[c]) - np.log(marginal[c])) for c in range(len(pi)))
              for pi in p]
        scores.append(np.exp(np.mean(kl)))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_matches_its_definition():
    logits = features(100, 12, 5, scale=3.0)
    mean, std = inception_score(logits, splits=10)
    ref_mean, ref_std = is_by_definition(logits, 10)
    assert mean == pytest.approx(ref_mean, rel=1e-10)
    assert std == pytest.approx(ref_std, rel=1e-8)


def test_inception_score_bounds():
    k = 10
    confident_and_diverse = np.eye(k)[np.arange(200) % k] * 50.0
    assert inception_score(confident_and_diverse, 10)[0] == pytest.approx(k, rel=1e-6)
    one_class = np.tile(np.eye(k)[0] * 50.0, (200, 1))
    assert inception_score(one_class, 10)[0] == pytest.approx(1.0, abs=1e-6)


def test_inception_score_needs_a_sample_per_split():
    with pytest.raises(ValueError, match="at least 10"):
        inception_score(features(5, 3, 0), splits=10)


# --- precision / recall ---------------------------------------------------------------

def test_precision_recall_are_one_on_identical_sets():
    x = features(300, 16, 0)
    assert precision_recall(x, x.copy(), k=3) == (1.0, 1.0)


def test_precision_recall_are_zero_on_disjoint_sets():
    real, fake = features(200, 16, 0), features(200, 16, 1, shift=50.0)
    assert precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_precision_recall_separate_quality_from_coverage():
    # fakes packed into the middle of the real cloud: all plausible (precision 1) but
    # covering only part of it (recall < 1)
    real = features(400, 2, 0)
    fake = features(400, 2, 1, scale=0.2)
    precision, recall = precision_recall(real, fake, k=3)
    assert precision == 1.0
    assert recall < 0.5


def test_precision_recall_by_definition_on_a_small_set():
    real, fake = features(25, 3, 2), features(20, 3, 3, 1.2, 0.3)

    def radii(s):
        d = np.linalg.norm(s[:, None] - s[None], axis=2)
        return np.sort(d, axis=1)[:, 3]  # column 0 is the point itself

    def share(points, centers, r):
        d = np.linalg.norm(points[:, None] - centers[None], axis=2)
        return float((d <= r[None]).any(axis=1).mean())

    expected = (share(fake, real, radii(real)), share(real, fake, radii(fake)))
    assert precision_recall(real, fake, k=3) == pytest.approx(expected)

"""Mode-coverage metrics on hand-made samples whose answers are known."""

import math

import pytest
import torch

from gancli.data.toy2d import grid_means, ring_means
from gancli.metrics.modes import (
    high_quality_fraction,
    mode_coverage,
    mode_histogram,
    modes_captured,
    reverse_kl_to_uniform,
)

GRID = grid_means(5, 2.0).float()
STD = 0.05


def test_samples_on_every_mean_cover_all_modes_uniformly():
    samples = GRID.repeat(4, 1)
    cov = mode_coverage(samples, GRID, STD)
    assert (cov.modes, cov.high_quality, cov.reverse_kl) == (25, 1.0, 0.0)


def test_collapse_to_one_mode_gives_log_k():
    samples = GRID[7].repeat(100, 1) + 0.01
    cov = mode_coverage(samples, GRID, STD)
    assert cov.modes == 1 and cov.high_quality == 1.0
    assert cov.reverse_kl == pytest.approx(math.log(25))


def test_three_std_is_the_boundary():
    inside = GRID[:1] + torch.tensor([[2.9 * STD, 0.0]])
    outside = GRID[1:2] + torch.tensor([[0.0, 3.1 * STD]])
    samples = torch.cat([inside, outside])
    assert modes_captured(samples, GRID, STD) == 1
    assert high_quality_fraction(samples, GRID, STD) == 0.5
    assert mode_histogram(samples, GRID, STD).tolist() == [1] + [0] * 24


def test_points_between_modes_are_low_quality_and_ignored_by_the_histogram():
    between = torch.tensor([[1.0, 0.0], [-1.0, -1.0], [3.0, 3.0]])  # midway between means
    samples = torch.cat([GRID[:2], between])
    cov = mode_coverage(samples, GRID, STD)
    assert cov.modes == 2 and cov.high_quality == pytest.approx(2 / 5)
    assert cov.reverse_kl == pytest.approx(math.log(25 / 2))  # two modes, equal shares


def test_reverse_kl_by_hand():
    # q = (3/4, 1/4) against uniform (1/2, 1/2)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert reverse_kl_to_uniform(torch.tensor([3, 1])) == pytest.approx(expected)
    assert math.isnan(reverse_kl_to_uniform(torch.tensor([0, 0])))


def test_ring_geometry():
    ring = ring_means(8, 1.0).float()
    samples = ring[[0, 2, 4, 6]] * 1.02  # 2 std outward of radius 1 with std 0.01
    cov = mode_coverage(samples, ring, 0.01)
    assert cov.modes == 4 and cov.high_quality == 1.0
    assert cov.reverse_kl == pytest.approx(math.log(2))

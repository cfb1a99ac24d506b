"""The extra loss terms of the label and code families, and the label metrics, on fixed tiny
inputs with values worked out by hand."""

import math

import pytest
import torch

from gancli.losses.auxiliary import (
    categorical_code_loss,
    class_loss,
    continuous_code_loss,
    feature_matching,
)
from gancli.metrics.labels import (
    best_matching_accuracy,
    chance_mutual_information,
    mutual_information,
    nats_to_bits,
    per_class_accuracy,
)


def test_class_loss_is_cross_entropy_over_labeled_items_only():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]])
    # item 0: -log(1/2); item 1 (label 1): -log(1/(3+1)); item 2 is unlabeled (-1)
    y = torch.tensor([0, 1, -1])
    assert class_loss(logits, y).item() == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert class_loss(logits[:1], torch.tensor([0])).item() == pytest.approx(math.log(2))


def test_class_loss_of_a_batch_without_labels_is_zero_and_keeps_the_graph():
    logits = torch.randn(3, 4, requires_grad=True)
    loss = class_loss(logits, torch.full((3,), -1))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros(3, 4))


def test_categorical_code_loss():
    logits = torch.tensor([[math.log(3.0), 0.0, 0.0]])  # p = (3/5, 1/5, 1/5)
    assert categorical_code_loss(logits, torch.tensor([0])).item() == pytest.approx(
        -math.log(3 / 5))
    assert categorical_code_loss(logits, torch.tensor([2])).item() == pytest.approx(
        -math.log(1 / 5))


def test_continuous_code_loss_is_half_the_squared_error_summed_over_codes():
    mean = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    code = torch.tensor([[1.0, 0.0], [1.0, 3.0]])
    # items: 1/2 (1 + 0) and 1/2 (0 + 4); their mean is 1.25
    assert continuous_code_loss(mean, code).item() == pytest.approx(1.25)


def test_feature_matching_compares_batch_means():
    real = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # mean (1, 1)
    fake = torch.tensor([[1.0, 3.0], [1.0, 3.0]])  # mean (1, 3)
    assert feature_matching(real, fake).item() == pytest.approx((0 + 4) / 2)
    assert feature_matching(real.mean(dim=0), fake).item() == pytest.approx(2.0)
    assert feature_matching(fake, fake).item() == 0.0


def test_mutual_information_of_identical_and_of_independent_variables():
    a = torch.tensor([0, 0, 1, 1])
    assert mutual_information(a, a, 2, 2) == pytest.approx(math.log(2))
    assert mutual_information(a, torch.tensor([0, 1, 0, 1]), 2, 2) == pytest.approx(0.0)
    # a relabelling of the values keeps all the information
    assert mutual_information(a, torch.tensor([1, 1, 0, 0]), 2, 2) == pytest.approx(math.log(2))
    assert nats_to_bits(math.log(2)) == pytest.approx(1.0)


def test_mutual_information_by_hand():
    # joint counts [[2, 1], [0, 1]] over 4 pairs: p(a) = (3/4, 1/4), p(b) = (1/2, 1/2)
    a, b = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 1])
    expected = (0.5 * math.log(0.5 / (0.75 * 0.5)) + 0.25 * math.log(0.25 / (0.75 * 0.5))
                + 0.25 * math.log(0.25 / (0.25 * 0.5)))
    assert mutual_information(a, b, 2, 2) == pytest.approx(expected)


def test_chance_level_is_small_and_below_a_real_dependence():
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(10, (5000,), generator=gen)
    noisy = torch.where(torch.rand(5000, generator=gen) < 0.5, a,
                        torch.randint(10, (5000,), generator=gen))
    chance = chance_mutual_information(a, noisy, 10, 10, shuffles=5)
    # the plug-in bias is about (10 - 1)^2 / (2 * 5000) = 0.0081 nats
    assert 0.002 < chance < 0.02
    assert mutual_information(a, noisy, 10, 10) > 20 * chance


def test_best_matching_accuracy_finds_the_permutation():
    code = torch.tensor([0, 0, 1, 1, 2, 2])
    digit = torch.tensor([7, 7, 3, 3, 3, 5])
    assert best_matching_accuracy(code, digit, 3, 10) == pytest.approx(5 / 6)


def test_per_class_accuracy():
    requested = torch.tensor([0, 0, 1, 1])
    predicted = torch.tensor([0, 1, 1, 1])
    acc = per_class_accuracy(requested, predicted, 3)
    assert acc[:2] == [0.5, 1.0] and math.isnan(acc[2])

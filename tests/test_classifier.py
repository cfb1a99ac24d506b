"""The committed MNIST classifier: small, accurate on digits it never saw, with the API the
conditional-GAN checks will use; and the training code that rebuilt it."""

from __future__ import annotations

import pytest
import torch

from gancli.data.embedded import load_mnist5k
from gancli.errors import GanError
from gancli.metrics.classifier import (
    FEATURE_DIM,
    WEIGHTS_PATH,
    load_classifier_file,
    load_mnist_classifier,
)
from gancli.metrics.train_classifier import (
    BLUR,
    accuracy,
    elastic_warp,
    held_out_split,
    random_shift,
    robust_augment,
    train,
)


def test_weights_file_is_small_and_records_its_held_out_accuracy():
    assert WEIGHTS_PATH.stat().st_size < 1_000_000
    state = load_classifier_file()
    assert state["test_accuracy"] >= 0.95 and state["held_out_per_class"] == 100


def test_held_out_accuracy_is_what_the_file_says():
    images, labels = load_mnist5k()
    _, test_idx = held_out_split(labels)
    model = load_mnist_classifier()
    acc = accuracy(model, images[test_idx], labels[test_idx])
    assert acc >= 0.95
    assert abs(acc - load_classifier_file()["test_accuracy"]) < 0.005


def test_held_out_split_is_disjoint_balanced_and_seeded():
    _, labels = load_mnist5k()
    train_idx, test_idx = held_out_split(labels)
    assert len(test_idx) == 1000 and len(train_idx) == 4000
    assert not set(train_idx.tolist()) & set(test_idx.tolist())
    assert torch.bincount(labels[test_idx]).tolist() == [100] * 10
    assert torch.equal(held_out_split(labels)[1], test_idx)


def test_api_takes_uint8_or_generator_output_at_any_size():
    images, labels = load_mnist5k()
    model = load_mnist_classifier()
    batch = images[:64]
    as_float = batch.float() / 127.5 - 1  # what a generator returns
    as_rgb64 = torch.nn.functional.interpolate(as_float, size=64, mode="bilinear")
    predicted = model.predict(batch)
    assert predicted.shape == (64,) and predicted.dtype == torch.int64
    assert torch.equal(model.predict(as_float), predicted)
    assert (model.predict(as_rgb64.expand(-1, 3, -1, -1)) == predicted).float().mean() > 0.9
    assert model.features(batch).shape == (64, FEATURE_DIM)
    assert model(batch).shape == (64, 10)
    assert not any(p.requires_grad for p in model.parameters())


def test_loading_leaves_the_global_rng_alone():
    before = torch.get_rng_state()
    load_mnist_classifier()
    assert torch.equal(torch.get_rng_state(), before)


def test_training_code_learns_quickly():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as train_classifier's main() runs: these convs are tiny
    try:
        learns_quickly()
    finally:
        torch.set_num_threads(threads)


def learns_quickly():
    images, labels = load_mnist5k()
    train_idx, test_idx = held_out_split(labels)
    model = train(images[train_idx[:1000]], labels[train_idx[:1000]], epochs=3)
    assert accuracy(model, images[test_idx[:300]], labels[test_idx[:300]]) > 0.8  # chance: 0.1


def test_random_shift_moves_digits_by_at_most_two_pixels():
    x = torch.full((16, 1, 8, 8), -1.0)
    x[:, :, 4, 4] = 1.0
    shifted = random_shift(x, torch.Generator().manual_seed(0))
    rows, cols = torch.nonzero(shifted[:, 0] > 0, as_tuple=True)[1:]
    assert len(rows) == 16
    assert ((rows - 4).abs() <= 2).all() and ((cols - 4).abs() <= 2).all()
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 1


def test_robust_augment_keeps_range_and_shape_and_is_seeded():
    x = load_mnist5k()[0][:64].float() / 127.5 - 1
    a = robust_augment(x.clone(), torch.Generator().manual_seed(0))
    b = robust_augment(x.clone(), torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    shifted = random_shift(x.clone(), torch.Generator().manual_seed(0))
    # the shifts are drawn first, then some images are warped, blurred or noised
    changed = (a - shifted).abs().flatten(1).amax(1) > 1e-4
    assert 0.4 < changed.float().mean() < 1


def test_elastic_warp_of_zero_pixels_is_the_identity_and_moves_ink_otherwise():
    x = load_mnist5k()[0][:8].float() / 127.5 - 1
    still = elastic_warp(x, torch.Generator().manual_seed(0), pixels=0.0)
    assert torch.allclose(still, x, atol=1e-5)
    moved = elastic_warp(x, torch.Generator().manual_seed(0), pixels=1.0)
    assert (moved - x).abs().mean() > 0.02
    assert (moved.mean() - x.mean()).abs() < 0.05  # ink moves, it is not created


def test_robust_augment_makes_a_classifier_that_survives_blur():
    """What --augment robust is for: the shifts-only classifier falls apart on blurred digits
    (the committed one reads 57.6% of its blurred held-out digits right), the augmented one
    does not. Small runs: 1,000 training digits, 3 epochs each."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        images, labels = load_mnist5k()
        train_idx, test_idx = held_out_split(labels)
        blurred = torch.nn.functional.conv2d(images[test_idx[:400]].float() / 127.5 - 1,
                                             BLUR[None, None], padding=2)
        truth = labels[test_idx[:400]]
        scores = {}
        for augment in ("shift", "robust"):
            model = train(images[train_idx[:1000]], labels[train_idx[:1000]], epochs=3,
                          augment=augment)
            scores[augment] = accuracy(model, blurred, truth)
    finally:
        torch.set_num_threads(threads)
    assert scores["robust"] > scores["shift"] + 0.1, scores


def test_a_missing_empty_or_foreign_file_is_a_one_line_error(tmp_path):
    empty, foreign = tmp_path / "empty.pt", tmp_path / "foreign.pt"
    empty.touch()
    torch.save({"weights": torch.zeros(3)}, foreign)
    for path, words in ((tmp_path / "none.pt", "missing"), (empty, "not a gancli"),
                        (foreign, "not a gancli")):
        with pytest.raises(GanError, match=words):
            load_classifier_file(path)

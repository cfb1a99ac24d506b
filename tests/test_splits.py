"""dataset.holdout / labeled / labeled_per_batch: which items are held out or keep their
labels, and the batches the training loop then sees."""

import copy

import pytest
import torch
from PIL import Image

from gancli.data import build_dataset
from gancli.data.base import DataInfo, TensorData
from gancli.data.splits import UNLABELED, MixedSampler, SplitOptions, apply_splits, split_indices
from gancli.errors import ConfigError, GanError
from tests.helpers import compose_config

LABELS = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 2, 2, 2, 2])  # 5 items of each class


def test_split_takes_holdout_then_labeled_items_of_every_class():
    split = split_indices(LABELS, 3, holdout=1, labeled=2, seed=0)
    assert len(split.test) == 3 and sorted(LABELS[split.test].tolist()) == [0, 1, 2]
    assert len(split.train) == 12 and not set(split.train.tolist()) & set(split.test.tolist())
    assert torch.equal(split.train.sort().values, split.train)
    kept = split.train_labels[split.train_labels != UNLABELED]
    assert sorted(kept.tolist()) == [0, 0, 1, 1, 2, 2]
    # labeled items keep their true label
    labeled = split.train[split.train_labels != UNLABELED]
    assert torch.equal(LABELS[labeled], split.train_labels[split.train_labels != UNLABELED])


def test_split_depends_on_split_seed_alone():
    a = split_indices(LABELS, 3, 1, 2, seed=0)
    b = split_indices(LABELS, 3, 1, 2, seed=0)
    c = split_indices(LABELS, 3, 1, 2, seed=1)
    assert torch.equal(a.test, b.test) and torch.equal(a.train_labels, b.train_labels)
    assert not (torch.equal(a.test, c.test) and torch.equal(a.train_labels, c.train_labels))


def test_holdout_alone_keeps_every_training_label():
    split = split_indices(LABELS, 3, holdout=2, labeled=None, seed=0)
    assert torch.equal(split.train_labels, LABELS[split.train])


def test_a_class_too_small_for_the_split_fails_clearly():
    with pytest.raises(GanError, match="class 0 has 5 items"):
        split_indices(LABELS, 3, holdout=3, labeled=2, seed=0)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="dataset.labeled_per_batch needs dataset.labeled"):
        SplitOptions(labeled_per_batch=4)
    with pytest.raises(ConfigError, match="dataset.holdout must be >= 0"):
        SplitOptions(holdout=-1)
    with pytest.raises(ConfigError, match="dataset.labeled must be >= 1"):
        SplitOptions(labeled=0)


def test_mnist5k_split_from_the_config():
    data = build_dataset(compose_config(["dataset.holdout=20", "dataset.labeled=3"]).dataset)
    assert len(data) == 5000 - 200
    x, y = data.held_out
    assert x.shape == (200, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(torch.bincount(y), torch.full((10,), 20))
    labels = data.labels()
    assert int((labels != UNLABELED).sum()) == 30
    lx, ly = data.labeled_items()
    assert lx.shape == (30, 1, 28, 28) and torch.equal(torch.bincount(ly), torch.full((10,), 3))
    # held-out digits never appear among the training images
    train_x = data.train.x.flatten(1)
    test_x = ((x + 1) * 127.5).round().to(torch.uint8).flatten(1)
    same = (train_x[:, None, :] == test_x[None, :20, :]).all(dim=2)
    assert not same.any()


def test_an_unlabeled_dataset_cannot_be_split():
    data = TensorData(DataInfo("blank", "image", (1, 4, 4)), torch.zeros(10, 1, 4, 4,
                                                                       dtype=torch.uint8))
    with pytest.raises(ConfigError, match="need class labels; dataset blank has none"):
        apply_splits(data, SplitOptions(holdout=1))


def test_no_split_options_leave_the_dataset_alone():
    data = build_dataset(compose_config(["dataset=ring8", "dataset.size=100"]).dataset)
    assert type(data).__name__ == "MixtureData" and data.held_out is None


def test_a_mixture_keeps_its_means_after_a_split():
    data = build_dataset(compose_config(["dataset=ring8", "dataset.size=400",
                                         "dataset.holdout=5"]).dataset)
    assert data.means.shape == (8, 2) and len(data) == 400 - 40


def test_mixed_batches_start_with_labeled_items():
    pool = torch.tensor([3, 7, 11, 15])
    sampler = MixedSampler(pool, n=20, batch_size=6, k=2, seed=0)
    batches = [b for _, b in zip(range(6), sampler, strict=False)]
    assert all(len(b) == 6 and set(b[:2].tolist()) <= set(pool.tolist()) for b in batches)
    # the labeled part walks through every labeled item each epoch of its own
    assert sorted(torch.cat([b[:2] for b in batches[:2]]).tolist()) == [3, 7, 11, 15]


def test_mixed_sampler_resumes_and_copies_independently():
    pool = torch.arange(5)
    a = MixedSampler(pool, 30, 8, 2, seed=1)
    it = iter(a)
    for _ in range(5):
        next(it)
    b = MixedSampler(pool, 30, 8, 2, seed=1)
    b.load_state_dict(a.state_dict())
    assert torch.equal(next(iter(b)), next(it))
    twin = copy.copy(a)
    twin.advance()
    assert twin.state_dict() != a.state_dict()


def test_mixed_sampler_checks_sizes():
    with pytest.raises(ConfigError, match="below train.batch_size"):
        MixedSampler(torch.arange(10), 30, 8, 8, seed=0)
    with pytest.raises(ConfigError, match="more than the 3 labeled items"):
        MixedSampler(torch.arange(3), 30, 8, 4, seed=0)


def test_training_batches_mix_in_labels():
    data = build_dataset(compose_config(["dataset.holdout=10", "dataset.labeled=2",
                                         "dataset.labeled_per_batch=4"]).dataset)
    sampler = data.sampler(16, seed=0)
    batches = data.batches(sampler, torch.device("cpu"))
    for _ in range(3):
        x, y = next(batches)
        assert x.shape == (16, 1, 28, 28) and (y[:4] >= 0).all()
    assert sampler.state_dict()["labeled"]["cursor"] == 3


def test_image_folder_with_class_subfolders_splits(tmp_path):
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.new("L", (8, 8), color=40 * i + (100 if c == "dog" else 0)).save(
                tmp_path / c / f"{i}.png")
    cfg = compose_config(["dataset=folder", f"dataset.root={tmp_path}", "dataset.resolution=8",
                          "dataset.channels=1", "dataset.holdout=1", "dataset.labeled=1"])
    data = build_dataset(cfg.dataset)
    assert len(data) == 6 and sorted(data.held_out[1].tolist()) == [0, 1]
    labels = [int(data.train.dataset[i][1]) for i in range(6)]
    assert sorted(labels) == [-1, -1, -1, -1, 0, 1]
    x, y = next(data.batches(data.sampler(6, seed=0), torch.device("cpu")))
    assert x.shape == (6, 1, 8, 8) and sorted(y.tolist()) == [-1, -1, -1, -1, 0, 1]


def test_subset_keeps_that_many_training_items_per_class_after_the_held_out_ones():
    split = split_indices(LABELS, 3, holdout=1, labeled=None, seed=0, subset=2)
    assert sorted(LABELS[split.train].tolist()) == [0, 0, 1, 1, 2, 2]
    assert len(split.test) == 3 and not set(split.train.tolist()) & set(split.test.tolist())
    full = split_indices(LABELS, 3, holdout=1, labeled=None, seed=0)
    assert torch.equal(full.test, split.test)  # the same held-out items with or without it


def test_subset_option_trains_on_fifty_digits():
    data = build_dataset(compose_config(["dataset.subset=5", "dataset.holdout=20"]).dataset)
    assert len(data) == 50 and data.held_out[0].shape[0] == 200
    with pytest.raises(ConfigError, match="dataset.subset must be >= 1"):
        compose_config(["dataset.subset=0"])

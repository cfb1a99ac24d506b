"""Held-out test items and hidden labels for labeled datasets: `dataset.holdout`,
`dataset.labeled`, `dataset.labeled_per_batch`, `dataset.split_seed`.

Which items are held out and which keep their labels depends on `split_seed` alone (not on the
run's `seed`): for each class in turn, a permutation of its items drawn from one generator
seeded with split_seed; the first `holdout` items of it are the test set, never trained on; the
next `labeled` keep their label; every other training item gets label -1 (unlabeled). So every
run with the same dataset options sees the same test set and the same labeled items.

With `labeled_per_batch` = k > 0, each training batch is k labeled items (cycled through in
epochs of their own) followed by batch_size - k items drawn from the whole training set, so a
few labels are seen at every step however few there are (Salimans et al. 2016 do the same).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gancli.data.base import EpochSampler, GanData
from gancli.errors import ConfigError, GanError

UNLABELED = -1
LABELED_STREAM_SEED = 7919  # keeps the labeled items' epochs apart from the main stream's


@dataclass
class SplitOptions:
    """The split keys every labeled dataset's config accepts (its config class derives from
    this one)."""

    holdout: int = 0  # items of each class kept out of training as a fixed test set
    labeled: int | None = None  # training items of each class keeping their label; null: all
    labeled_per_batch: int = 0  # items of each batch drawn from the labeled ones; 0: no mixing
    split_seed: int = 0  # picks the held-out and labeled items; independent of `seed`
    # training items of each class kept (after the held-out ones); the rest are dropped.
    # null: all. A tiny subset makes a deliberately memorising run (`gan nn` shows it)
    subset: int | None = None

    def __post_init__(self):
        if self.holdout < 0:
            raise ConfigError(f"dataset.holdout must be >= 0, got {self.holdout}")
        if self.labeled is not None and self.labeled < 1:
            raise ConfigError(f"dataset.labeled must be >= 1 (or null: all), got {self.labeled}")
        if self.labeled_per_batch < 0:
            raise ConfigError(f"dataset.labeled_per_batch must be >= 0, "
                              f"got {self.labeled_per_batch}")
        if self.subset is not None and self.subset < 1:
            raise ConfigError(f"dataset.subset must be >= 1 (or null: all), got {self.subset}")
        if self.subset is not None and self.labeled is not None and self.labeled > self.subset:
            raise ConfigError(f"dataset.labeled={self.labeled} is more than "
                              f"dataset.subset={self.subset} training items per class")
        if self.labeled_per_batch and self.labeled is None:
            raise ConfigError("dataset.labeled_per_batch needs dataset.labeled (labeled items "
                              "per class); with every item labeled there is nothing to mix in")

    @property
    def active(self) -> bool:
        return self.holdout > 0 or self.labeled is not None or self.subset is not None


@dataclass(frozen=True)
class Split:
    train: torch.Tensor  # indices of the training items
    test: torch.Tensor  # indices of the held-out items
    train_labels: torch.Tensor  # labels of the training items, UNLABELED where hidden


def split_indices(labels: torch.Tensor, num_classes: int, holdout: int, labeled: int | None,
                  seed: int, subset: int | None = None) -> Split:
    """Per class: `holdout` test items, then `labeled` labeled ones, the rest unlabeled;
    with `subset`, only the next `subset` items after the test ones are trained on."""
    gen = torch.Generator().manual_seed(seed)
    test, keep, dropped = [], [], []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        need = holdout + (labeled or 0)
        if len(idx) <= need:
            raise GanError(f"class {c} has {len(idx)} items; dataset.holdout={holdout} and "
                           f"dataset.labeled={labeled} per class leave none to train on")
        idx = idx[torch.randperm(len(idx), generator=gen)]
        test.append(idx[:holdout])
        keep.append(idx[holdout:need])
        if subset is not None:
            dropped.append(idx[holdout + subset:])
    test_idx = torch.cat(test).sort().values
    in_train = torch.ones(len(labels), dtype=torch.bool)
    in_train[test_idx] = False
    if dropped:
        in_train[torch.cat(dropped)] = False
    train_idx = torch.nonzero(in_train).flatten()
    train_labels = labels[train_idx].clone()
    if labeled is not None:
        is_labeled = torch.zeros(len(labels), dtype=torch.bool)
        is_labeled[torch.cat(keep)] = True
        train_labels[~is_labeled[train_idx]] = UNLABELED
    return Split(train_idx, test_idx, train_labels)


class MixedSampler:
    """Index batches of k items from `pool` (the labeled items) followed by batch_size - k
    items from all n training items; each part walks its own seeded epochs."""

    def __init__(self, pool: torch.Tensor, n: int, batch_size: int, k: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        if k >= batch_size:
            raise ConfigError(f"dataset.labeled_per_batch={k} must be below "
                              f"train.batch_size={batch_size}")
        if k > len(pool):
            raise ConfigError(f"dataset.labeled_per_batch={k} is more than the {len(pool)} "
                              f"labeled items")
        if k % world_size:
            raise ConfigError(f"dataset.labeled_per_batch={k} is not divisible by "
                              f"{world_size} ranks")
        self.pool = pool
        self.labeled = EpochSampler(len(pool), k, seed + LABELED_STREAM_SEED, rank, world_size)
        self.rest = EpochSampler(n, batch_size - k, seed, rank, world_size)

    def __iter__(self):
        for mine, rest in zip(self.labeled, self.rest, strict=False):
            yield torch.cat([self.pool[mine], rest])

    def advance(self) -> None:
        self.labeled.advance()
        self.rest.advance()

    def __copy__(self):
        twin = object.__new__(MixedSampler)
        twin.pool = self.pool
        twin.labeled, twin.rest = copy.copy(self.labeled), copy.copy(self.rest)
        return twin

    def state_dict(self) -> dict:
        return {"labeled": self.labeled.state_dict(), "rest": self.rest.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.labeled.load_state_dict(state["labeled"])
        self.rest.load_state_dict(state["rest"])


class SplitData(GanData):
    """The training part of a labeled dataset, with its held-out items beside it."""

    def __init__(self, train: GanData, held_out: tuple[torch.Tensor, torch.Tensor] | None,
                 labeled_pool: torch.Tensor, labeled_per_batch: int):
        self.train, self.info, self.held_out = train, train.info, held_out
        self.labeled_pool, self.labeled_per_batch = labeled_pool, labeled_per_batch

    def __len__(self) -> int:
        return len(self.train)

    def __getattr__(self, name):  # what a dataset adds (a mixture's means and std)
        if name == "train":
            raise AttributeError(name)
        return getattr(self.train, name)

    def batches(self, sampler, device, num_workers=0):
        return self.train.batches(sampler, device, num_workers)

    def sampler(self, batch_size, seed, rank=0, world_size=1):
        if self.labeled_per_batch:
            return MixedSampler(self.labeled_pool, len(self), batch_size, self.labeled_per_batch,
                                seed, rank, world_size)
        return self.train.sampler(batch_size, seed, rank, world_size)

    def real_samples(self, n, seed=0):
        return self.train.real_samples(n, seed)

    def labels(self):
        return self.train.labels()

    def items(self, idx):
        return self.train.items(idx)

    def labeled_items(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training items that keep their labels, in [-1, 1]."""
        return self.train.items(self.labeled_pool)


def apply_splits(data: GanData, opts: SplitOptions) -> GanData:
    """`data` restricted to its training items as `opts` says; `data` itself when no split
    option is set."""
    if not opts.active:
        return data
    labels = data.labels()
    if labels is None:
        raise ConfigError(f"dataset.holdout and dataset.labeled need class labels; dataset "
                          f"{data.info.name} has none")
    split = split_indices(labels, data.info.num_classes, opts.holdout, opts.labeled,
                          opts.split_seed, opts.subset)
    train = data.subset(split.train, split.train_labels)
    held_out = data.items(split.test) if opts.holdout else None
    pool = torch.nonzero(split.train_labels != UNLABELED).flatten()
    return SplitData(train, held_out, pool, opts.labeled_per_batch)

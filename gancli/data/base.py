"""What every dataset provides: its shape, and a resumable stream of batches in [-1, 1].

Data order comes from a permutation per epoch derived from (seed, epoch) alone, so the stream's
whole state is two integers and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset

from gancli.errors import GanError


@dataclass(frozen=True)
class DataInfo:
    """Enough about a dataset to rebuild a model for it without loading the data."""

    name: str
    kind: str  # "image" (C, H, W) or "points" (D,)
    shape: tuple[int, ...]
    num_classes: int = 0  # 0 when the dataset has no labels
    # 2 for translation data: a batch holds domain A then domain B along the channels, each
    # `shape`, and labels (N, 2); 1 otherwise
    domains: int = 1
    # the data's identity where it can change under the same config (a folder's file list
    # hash); saved in checkpoints, compared on resume; "" where the config fixes the data
    fingerprint: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DataInfo:
        return cls(data["name"], data["kind"], tuple(data["shape"]), data.get("num_classes", 0),
                   data.get("domains", 1), str(data.get("fingerprint") or ""))


class EpochSampler:
    """Yields index batches; each epoch is a fresh permutation seeded by (seed, epoch).

    With world_size > 1 each rank takes its slice of every global batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if batch_size > n:
            raise GanError(f"train.batch_size={batch_size} is larger than the dataset ({n} items)")
        if batch_size % world_size:
            raise GanError(f"train.batch_size={batch_size} is not divisible by {world_size} ranks")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.cursor = 0, 0  # cursor counts batches consumed in this epoch

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size  # the last partial batch is dropped

    def _permutation(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=gen)

    def __iter__(self) -> Iterator[torch.Tensor]:
        local = self.batch_size // self.world_size
        while True:
            perm = self._permutation()
            while self.cursor < self.batches_per_epoch:
                start = self.cursor * self.batch_size + self.rank * local
                self.cursor += 1
                yield perm[start:start + local]
            self.epoch, self.cursor = self.epoch + 1, 0

    def advance(self) -> None:
        """Count one batch consumed by someone iterating a copy of this sampler."""
        self.cursor += 1
        if self.cursor >= self.batches_per_epoch:
            self.epoch, self.cursor = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])


class GanData:
    """A dataset ready for training: info, length, real samples and a batch stream."""

    info: DataInfo
    # (images in [-1, 1], labels) kept out of training by dataset.holdout; see splits.py
    held_out: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def batches(self, sampler: EpochSampler, device: torch.device,
                num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        raise NotImplementedError

    def sampler(self, batch_size: int, seed: int, rank: int = 0,
                world_size: int = 1) -> EpochSampler:
        return EpochSampler(len(self), batch_size, seed, rank, world_size)

    def real_samples(self, n: int, seed: int = 0) -> torch.Tensor:
        """n items in [-1, 1] (for plots and metrics), a seeded random subset."""
        raise NotImplementedError

    # Used by dataset.holdout / dataset.labeled (splits.py) to split a labeled dataset:

    def labels(self) -> torch.Tensor | None:
        """Every item's class (int64, (N,)); None when the dataset has no labels."""
        return None

    def items(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The items at `idx` in [-1, 1] and their labels."""
        raise NotImplementedError

    def subset(self, idx: torch.Tensor, labels: torch.Tensor) -> GanData:
        """A copy holding only the items at `idx`, labelled `labels` (-1: unlabeled)."""
        raise NotImplementedError

    def labeled_items(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training items that carry a label, in [-1, 1]: all of them, unless
        dataset.labeled hides some (splits.SplitData)."""
        return self.items(torch.arange(len(self)))


def _plain_errors(loader):
    """A GanError raised in a DataLoader worker comes back wrapped in a multi-line message
    holding the worker's traceback; keep only the original one-line message."""
    try:
        yield from loader
    except GanError as err:
        last = str(err).strip().splitlines()[-1]
        raise GanError(last.split("GanError: ", 1)[-1]) from None


def uint8_to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


class TensorData(GanData):
    """Everything in memory. Images stay uint8 (4x smaller) and are scaled per batch, on the
    training device so small datasets never wait on a loader."""

    def __init__(self, info: DataInfo, x: torch.Tensor, y: torch.Tensor | None = None):
        if info.kind == "image" and x.dtype != torch.uint8:
            raise TypeError("image tensors are stored as uint8")
        self.info, self.x, self.y = info, x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        return uint8_to_unit(x) if x.dtype == torch.uint8 else x.float()

    def batches(self, sampler, device, num_workers=0):
        x = self.x.to(device)
        y = self.y.to(device) if self.y is not None else None
        for idx in sampler:
            idx = idx.to(device)
            yield self._scale(x[idx]), (y[idx] if y is not None else None)

    def real_samples(self, n, seed=0):
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=gen)[:n]
        return self._scale(self.x[idx])

    def labels(self):
        return self.y if self.info.num_classes else None

    def items(self, idx):
        return self._scale(self.x[idx]), self.y[idx]

    def subset(self, idx, labels):
        part = copy.copy(self)  # keeps what a subclass adds (a mixture's means)
        part.x, part.y = self.x[idx], labels
        return part


class StreamedData(GanData):
    """Items read from disk by a map-style Dataset returning (float image in [-1, 1], label)."""

    def __init__(self, info: DataInfo, dataset: Dataset):
        self.info, self.dataset = info, dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, sampler, device, num_workers=0):
        # The loader reads ahead of training, so it iterates a copy and the real sampler
        # only counts what training consumed: its state stays right for checkpoints.
        ahead = copy.copy(sampler)
        loader = DataLoader(self.dataset, batch_sampler=ahead, num_workers=num_workers,
                            pin_memory=device.type == "cuda",
                            persistent_workers=num_workers > 0)
        for x, y in _plain_errors(loader):
            sampler.advance()
            y = y.to(device, non_blocking=True) if self.info.num_classes else None
            yield x.to(device, non_blocking=True), y

    def real_samples(self, n, seed=0):
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=gen)[:n].tolist()
        return torch.stack([self.dataset[i][0] for i in idx])

    def labels(self):
        labels = getattr(self.dataset, "labels", None)  # ImageFiles has them; CelebA does not
        if not self.info.num_classes or labels is None:
            return None
        return torch.as_tensor(labels, dtype=torch.int64)

    def items(self, idx):
        pairs = [self.dataset[i] for i in idx.tolist()]
        return (torch.stack([x for x, _ in pairs]),
                torch.tensor([int(y) for _, y in pairs], dtype=torch.int64))

    def subset(self, idx, labels):
        part = copy.copy(self)
        part.dataset = _Relabeled(self.dataset, idx, labels)
        return part


class _Relabeled(Dataset):
    """The items of `dataset` at `idx`, with new labels."""

    def __init__(self, dataset: Dataset, idx: torch.Tensor, labels: torch.Tensor):
        self.dataset, self.idx, self.labels = dataset, idx.tolist(), labels.tolist()

    def __len__(self):
        return len(self.idx)

    def __getitem__(self, i):
        return self.dataset[self.idx[i]][0], self.labels[i]

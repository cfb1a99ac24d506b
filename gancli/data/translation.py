"""Two-domain datasets for image-to-image translation (model=cyclegan, model=pix2pix).

Every translation dataset yields batches (x, y) with x = (N, 2C, H, W): domain A's images in
the first C channels, domain B's in the last C, and y = (N, 2) class labels (None when a
domain has none). Unpaired data draws the two halves independently, each domain with its own
seeded epochs; paired data draws aligned pairs. Each domain keeps held-out test items
(`test_a`, `test_b`: images in [-1, 1] and labels or None) that training never sees; the
samples, `gan sample`, `gan translate` and `gan eval` translate those.

- `unpaired`: any two registered datasets (`dataset.a`, `dataset.b`, each a block with its own
  `name` and options, e.g. a folder), each holding out `dataset.holdout_a` / `holdout_b` items.
- `digits2mnist`: scikit-learn's 8x8 digits (domain A) on a 28x28 canvas, the whole image
  scaled to `dataset.digit_size` pixels and centred (`dataset.framing=square`), or framed as
  MNIST's digits were (`mnist`: ink box fitted, aspect kept, centred by mass), against mnist5k
  (domain B); both labeled.
- `edges2mnist`: pairs of an edge map of each mnist5k digit (A) and the digit (B).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import torch
import torch.nn.functional as F

from gancli.data.base import DataInfo, EpochSampler, GanData, TensorData, uint8_to_unit
from gancli.data.embedded import load_mnist5k
from gancli.data.splits import split_indices
from gancli.errors import ConfigError, GanError
from gancli.registry import DATASETS

B_STREAM_SEED = 15_485_863  # keeps domain B's epochs apart from domain A's
MNIST_SIDE = 28

Held = tuple[torch.Tensor, torch.Tensor | None]  # images in [-1, 1], labels or None


class DomainPairSampler:
    """Index batches for both domains at once, each from its own seeded epochs."""

    def __init__(self, a: EpochSampler, b: EpochSampler):
        self.a, self.b = a, b

    def __iter__(self):
        return zip(self.a, self.b, strict=False)

    def advance(self) -> None:
        self.a.advance()
        self.b.advance()

    def state_dict(self) -> dict:
        return {"a": self.a.state_dict(), "b": self.b.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.a.load_state_dict(state["a"])
        self.b.load_state_dict(state["b"])


def _pair_labels(ya, yb):
    if ya is None or yb is None:
        return None
    return torch.stack([ya, yb], dim=1)


class TranslationData(GanData):
    """Unpaired (two domain datasets sampled independently) or paired (one dataset whose items
    hold both domains along the channels) training items, and each domain's test items."""

    def __init__(self, info: DataInfo, test_a: Held, test_b: Held, *,
                 pairs: GanData | None = None, a: GanData | None = None,
                 b: GanData | None = None):
        for domain, (images, _) in (("A", test_a), ("B", test_b)):
            if len(images) == 0:
                raise GanError(f"dataset {info.name}: domain {domain} has no held-out test "
                               f"items; raise its holdout or add test images")
        self.info, self.test_a, self.test_b = info, test_a, test_b
        self.pairs, self.a, self.b = pairs, a, b

    @property
    def paired(self) -> bool:
        return self.pairs is not None

    def __len__(self) -> int:
        return len(self.pairs) if self.paired else max(len(self.a), len(self.b))

    def sampler(self, batch_size, seed, rank=0, world_size=1):
        if self.paired:
            return self.pairs.sampler(batch_size, seed, rank, world_size)
        return DomainPairSampler(self.a.sampler(batch_size, seed, rank, world_size),
                                 self.b.sampler(batch_size, seed + B_STREAM_SEED, rank,
                                                world_size))

    def batches(self, sampler, device, num_workers=0):
        if self.paired:
            yield from self.pairs.batches(sampler, device, num_workers)
            return
        stream_a = self.a.batches(sampler.a, device, num_workers)
        stream_b = self.b.batches(sampler.b, device, num_workers)
        for (xa, ya), (xb, yb) in zip(stream_a, stream_b, strict=False):
            yield torch.cat([xa, xb], dim=1), _pair_labels(ya, yb)

    def real_samples(self, n, seed=0):
        """Training images of domain B (what G_ab learns to make)."""
        if self.paired:
            return self.pairs.real_samples(n, seed)[:, self.info.shape[0]:]
        return self.b.real_samples(n, seed)


def domain_test(images: torch.Tensor, labels: torch.Tensor | None) -> Held:
    return uint8_to_unit(images) if images.dtype == torch.uint8 else images, labels


def split_domain(images: torch.Tensor, labels: torch.Tensor, classes: int, holdout: int,
                 seed: int, key: str) -> tuple[torch.Tensor, torch.Tensor, Held]:
    """(training images, their labels, held-out (images in [-1, 1], labels)): `holdout`
    items of each class kept out, chosen by `seed` (as dataset.holdout does)."""
    if holdout < 1:
        raise ConfigError(f"{key} must be >= 1: translation needs held-out test items")
    split = split_indices(labels, classes, holdout, None, seed)
    return (images[split.train], labels[split.train],
            domain_test(images[split.test], labels[split.test]))


def check_same_shape(name: str, a: DataInfo, b: DataInfo) -> None:
    if a.kind != "image" or b.kind != "image":
        raise ConfigError(f"dataset {name} needs images in both domains; got {a.kind} and "
                          f"{b.kind}")
    if a.shape != b.shape:
        raise ConfigError(f"dataset {name}: domains A and B must have the same shape, got "
                          f"{'x'.join(map(str, a.shape))} ({a.name}) and "
                          f"{'x'.join(map(str, b.shape))} ({b.name}); set their resolution "
                          f"or channels")


# --- unpaired: any two registered datasets -------------------------------------------------


@dataclass
class UnpairedConfig:
    name: str = "unpaired"
    # domain A: a dataset block with its own name and options, e.g. {name: digits}
    a: Any = field(default_factory=lambda: {"name": "digits", "resolution": 28})
    b: Any = field(default_factory=lambda: {"name": "mnist5k"})  # domain B, as `a`
    holdout_a: int = 20  # domain A items held out per class (all of them: per 1 unlabeled)
    holdout_b: int = 20  # domain B items held out per class, as holdout_a
    split_seed: int = 0  # picks the held-out items; independent of `seed`

    def __post_init__(self):
        for key in ("a", "b"):
            block = getattr(self, key)
            if not isinstance(block, dict) or "name" not in block:
                raise ConfigError(f"dataset.{key} must be a dataset block with a name, e.g. "
                                  f"dataset.{key}.name=mnist5k")
        for key in ("holdout_a", "holdout_b"):
            if getattr(self, key) < 1:
                raise ConfigError(f"dataset.{key} must be >= 1 (translation needs held-out "
                                  f"test items), got {getattr(self, key)}")


def _domain(block: dict, key: str, holdout: int, split_seed: int) -> tuple[GanData, Held]:
    """A domain's training data and held-out items: per class when it has labels, else the
    last `holdout` items of a seeded permutation."""
    from gancli.config import typed_block
    from gancli.data import build_dataset

    data = build_dataset(typed_block("dataset", block, f"dataset.{key}"))
    if len(data) == 0:
        raise GanError(f"dataset.{key} ({data.info.name}) is empty")
    labels = data.labels()
    if labels is not None:
        split = split_indices(labels, data.info.num_classes, holdout, None, split_seed)
        train, test = split.train, split.test
    else:
        if len(data) <= holdout:
            raise GanError(f"dataset.{key} ({data.info.name}) has {len(data)} items; "
                           f"dataset.holdout_{key}={holdout} leaves none to train on")
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(split_seed))
        train, test = order[holdout:].sort().values, order[:holdout].sort().values
    images, test_labels = data.items(test)
    part = data.subset(train, labels[train] if labels is not None else
                       torch.zeros(len(train), dtype=torch.long))
    return part, (images, test_labels if labels is not None else None)


@DATASETS.register("unpaired", UnpairedConfig)
def build_unpaired(cfg: UnpairedConfig) -> TranslationData:
    a, test_a = _domain(cfg.a, "a", cfg.holdout_a, cfg.split_seed)
    b, test_b = _domain(cfg.b, "b", cfg.holdout_b, cfg.split_seed)
    check_same_shape("unpaired", a.info, b.info)
    classes = a.info.num_classes if a.info.num_classes == b.info.num_classes else 0
    info = DataInfo(f"unpaired:{a.info.name}-{b.info.name}", "image", a.info.shape, classes,
                    domains=2, fingerprint=a.info.fingerprint + b.info.fingerprint)
    if not classes:  # labels mean the same classes in both domains, or nothing
        test_a, test_b = (test_a[0], None), (test_b[0], None)
    return TranslationData(info, test_a, test_b, a=a, b=b)


# --- digits2mnist and edges2mnist: offline, labeled ----------------------------------------


class Framing(Enum):
    square = "square"  # the whole 8x8 image scaled to digit_size x digit_size, centred
    mnist = "mnist"  # as MNIST was made: the ink's bounding box fitted into digit_size
    # (aspect kept), centred by its centre of mass


@dataclass
class Digits2MnistConfig:
    name: str = "digits2mnist"
    digit_size: int = 20  # side of the box the 8x8 digits are scaled into (MNIST's: 20)
    framing: Framing = Framing.square  # square | mnist: how a digit is placed on 28x28
    side: int = 28  # canvas of both domains: 28, or more (black borders; e.g. 32 for a deep U-Net)
    holdout_a: int = 30  # sklearn digits held out per class (about 180 each class)
    holdout_b: int = 50  # mnist5k digits held out per class (500 each class)
    split_seed: int = 0  # picks the held-out items; independent of `seed`

    def __post_init__(self):
        if not 1 <= self.digit_size <= MNIST_SIDE:
            raise ConfigError(f"dataset.digit_size must be in 1..{MNIST_SIDE}, "
                              f"got {self.digit_size}")
        if self.side < MNIST_SIDE:
            raise ConfigError(f"dataset.side must be >= {MNIST_SIDE}, got {self.side}")
        for key in ("holdout_a", "holdout_b"):
            if getattr(self, key) < 1:
                raise ConfigError(f"dataset.{key} must be >= 1, got {getattr(self, key)}")


def _scaled(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(pixels[None, None], size=size, mode="bilinear", antialias=True,
                         align_corners=False)[0, 0].clamp_(0, 255)


def mnist_framed(digit: torch.Tensor, box: int) -> torch.Tensor:
    """One digit (H, W) on a 28x28 canvas as MNIST's were framed: its ink's bounding box
    scaled to fit box x box (aspect kept), its centre of mass at the canvas centre (moved
    inwards where it would leave the canvas)."""
    rows = torch.nonzero(digit.amax(dim=1) > 0).flatten()
    cols = torch.nonzero(digit.amax(dim=0) > 0).flatten()
    ink = digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = box / max(ink.shape)
    h, w = (max(1, round(n * scale)) for n in ink.shape)
    scaled = _scaled(ink, (h, w))
    mass = scaled.sum().clamp_min(1e-6)
    cy = float((scaled.sum(dim=1) * torch.arange(h)).sum() / mass)
    cx = float((scaled.sum(dim=0) * torch.arange(w)).sum() / mass)
    centre = MNIST_SIDE / 2
    top = min(max(round(centre - cy), 0), MNIST_SIDE - h)
    left = min(max(round(centre - cx), 0), MNIST_SIDE - w)
    canvas = torch.zeros(MNIST_SIDE, MNIST_SIDE)
    canvas[top:top + h, left:left + w] = scaled
    return canvas


def mnist_like_digits(size: int, framing: Framing = Framing.square
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as uint8 (N, 1, 28, 28), scaled (antialiased bilinear) into a
    size x size box on a black 28x28 canvas as `framing` says."""
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = torch.from_numpy(bunch.images.astype(np.float32) * (255.0 / 16.0))
    if framing is Framing.mnist:
        canvas = torch.stack([mnist_framed(d, size) for d in pixels])
    else:
        before = (MNIST_SIDE - size) // 2
        canvas = torch.stack([F.pad(_scaled(d, (size, size)),
                                    (before, MNIST_SIDE - size - before) * 2) for d in pixels])
    images = canvas.unsqueeze(1).round_().clamp_(0, 255).to(torch.uint8)
    return images, torch.from_numpy(bunch.target.astype(np.int64))


@DATASETS.register("digits2mnist", Digits2MnistConfig)
def build_digits2mnist(cfg: Digits2MnistConfig) -> TranslationData:
    digits, digit_labels = mnist_like_digits(cfg.digit_size, cfg.framing)
    mnist, mnist_labels = load_mnist5k()
    digits, mnist = centred_on(digits, cfg.side), centred_on(mnist, cfg.side)
    xa, ya, test_a = split_domain(digits, digit_labels, 10, cfg.holdout_a, cfg.split_seed,
                                  "dataset.holdout_a")
    xb, yb, test_b = split_domain(mnist, mnist_labels, 10, cfg.holdout_b, cfg.split_seed,
                                  "dataset.holdout_b")
    shape = (1, cfg.side, cfg.side)
    info = DataInfo("digits2mnist", "image", shape, 10, domains=2)
    return TranslationData(info, test_a, test_b,
                           a=TensorData(DataInfo("digits", "image", shape, 10), xa, ya),
                           b=TensorData(DataInfo("mnist5k", "image", shape, 10), xb, yb))


def centred_on(images: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 (N, C, H, W) images on a black side x side canvas (H, W <= side)."""
    top, left = (side - images.shape[-2]) // 2, (side - images.shape[-1]) // 2
    pad = (left, side - images.shape[-1] - left, top, side - images.shape[-2] - top)
    return F.pad(images, pad) if any(pad) else images


@dataclass
class Edges2MnistConfig:
    name: str = "edges2mnist"
    holdout: int = 50  # pairs held out per class (of 500 each)
    split_seed: int = 0  # picks the held-out pairs; independent of `seed`
    threshold: float = 0.5  # edge where the Sobel gradient exceeds this share of its maximum

    def __post_init__(self):
        if self.holdout < 1:
            raise ConfigError(f"dataset.holdout must be >= 1, got {self.holdout}")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"dataset.threshold must be in (0, 1), got {self.threshold}")


def edge_maps(images: torch.Tensor, threshold: float) -> torch.Tensor:
    """uint8 (N, 1, H, W) -> uint8 edge maps: 255 where the Sobel gradient magnitude exceeds
    `threshold` times the image's largest, else 0."""
    x = images.float() / 255.0
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    gx = F.conv2d(x, kx, padding=1)
    gy = F.conv2d(x, kx.transpose(-1, -2), padding=1)
    magnitude = (gx.square() + gy.square()).sqrt()
    peak = magnitude.flatten(1).amax(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
    return ((magnitude > threshold * peak) * 255).to(torch.uint8)


@DATASETS.register("edges2mnist", Edges2MnistConfig)
def build_edges2mnist(cfg: Edges2MnistConfig) -> TranslationData:
    mnist, labels = load_mnist5k()
    pairs = torch.cat([edge_maps(mnist, cfg.threshold), mnist], dim=1)
    split = split_indices(labels, 10, cfg.holdout, None, cfg.split_seed)
    test = uint8_to_unit(pairs[split.test])
    test_labels = labels[split.test]
    info = DataInfo("edges2mnist", "image", (1, MNIST_SIDE, MNIST_SIDE), 10, domains=2)
    train = TensorData(replace_shape(info, pairs.shape[1:]), pairs[split.train],
                       torch.stack([labels[split.train]] * 2, dim=1))
    return TranslationData(info, (test[:, :1], test_labels), (test[:, 1:], test_labels),
                           pairs=train)


def replace_shape(info: DataInfo, shape) -> DataInfo:
    from dataclasses import replace

    return replace(info, shape=tuple(shape))

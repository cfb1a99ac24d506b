"""Where `gan eval` gets images: a checkpoint's generator, a registered dataset, a folder of
image files, or an .npz file with a `samples` array (what `gan sample out=x.npz` writes).

Each source yields uint8 (N, C, H, W) batches and describes itself as plain data, which is
written into the results and, for real data, keys the statistics cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from gancli.errors import GanError
from gancli.images import to_uint8

# pytorch-fid's extensions, matched case-insensitively
IMAGE_SUFFIXES = {".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}


def _subset(total: int, n: int, seed: int) -> torch.Tensor:
    """The first n of a seeded permutation (as GanData.real_samples picks), or all, in order."""
    if n >= total:
        return torch.arange(total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]


def _workers(num_workers: int | None) -> int:
    return min(8, os.cpu_count() or 1) if num_workers is None else num_workers


class Source:
    kind: str

    def __len__(self) -> int:
        raise NotImplementedError

    def describe(self) -> dict:
        raise NotImplementedError

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        raise NotImplementedError


class _ImageFiles(Dataset):
    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.paths[i]) as image:  # RGB, as pytorch-fid reads every file
            return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)


class FolderSource(Source):
    """Image files below a folder (subfolders included), sorted by path."""

    kind = "folder"

    def __init__(self, root: str | Path, n: int, seed: int = 0, num_workers: int | None = None):
        self.root = Path(root).expanduser().resolve()
        found = sorted(p for p in self.root.rglob("*")
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not found:
            raise GanError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under "
                           f"{self.root}")
        self.total = len(found)
        self.files = [found[i] for i in _subset(len(found), n, seed).sort().values.tolist()]
        self.seed, self.num_workers = seed, _workers(num_workers)

    def __len__(self):
        return len(self.files)

    def describe(self):
        stats = [p.stat() for p in self.files]
        return {"kind": self.kind, "path": str(self.root), "files": self.total,
                "used": len(self.files), "seed": self.seed,
                "bytes": sum(s.st_size for s in stats),
                "newest_mtime": max(s.st_mtime for s in stats)}

    def batches(self, batch_size):
        loader = DataLoader(_ImageFiles(self.files), batch_size=batch_size,
                            num_workers=self.num_workers)
        try:
            yield from loader
        except RuntimeError as err:
            if "stack expects each tensor to be equal size" in str(err):
                raise GanError(f"the images under {self.root} differ in size; resize them to "
                               f"one size first") from None
            raise


def _as_uint8_images(array: np.ndarray, path: Path) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(array))
    if x.ndim == 3:  # (N, H, W): grey
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise GanError(f"{path}: 'samples' has shape {tuple(x.shape)}; gan eval needs images "
                       f"(N, C, H, W)")
    if x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):  # (N, H, W, C)
        x = x.permute(0, 3, 1, 2)
    if x.dtype == torch.uint8:
        return x
    return to_uint8(x)  # floats are in [-1, 1], as gan sample writes them


class NpzSource(Source):
    kind = "npz"

    def __init__(self, path: str | Path, n: int, seed: int = 0):
        self.path = Path(path).expanduser().resolve()
        if not self.path.is_file():
            raise GanError(f"{self.path} does not exist")
        with np.load(self.path, allow_pickle=False) as data:
            if "samples" not in data:
                raise GanError(f"{self.path} has no 'samples' array (it has: "
                               f"{', '.join(data.files) or 'nothing'})")
            samples = data["samples"]
        self.images = _as_uint8_images(samples, self.path)
        self.total, self.seed = self.images.shape[0], seed
        self.images = self.images[_subset(self.total, n, seed)]

    def __len__(self):
        return self.images.shape[0]

    def describe(self):
        stat = self.path.stat()
        return {"kind": self.kind, "path": str(self.path), "items": self.total,
                "used": len(self), "seed": self.seed, "bytes": stat.st_size,
                "mtime": stat.st_mtime}

    def batches(self, batch_size):
        for i in range(0, len(self), batch_size):
            yield self.images[i:i + batch_size]


class _Quantized(Dataset):
    """Items of a streamed dataset (floats in [-1, 1]) as uint8."""

    def __init__(self, dataset, indices: list[int]):
        self.dataset, self.indices = dataset, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return to_uint8(self.dataset[self.indices[i]][0])


class DatasetSource(Source):
    """A seeded subset of a registered dataset, built from its typed config block."""

    kind = "dataset"

    def __init__(self, cfg, n: int, seed: int = 0, data=None, num_workers: int | None = None):
        from gancli.data import build_dataset
        from gancli.data.splits import SplitData

        self.cfg, self.seed, self.num_workers = cfg, seed, _workers(num_workers)
        self.data = data if data is not None else build_dataset(cfg)
        if isinstance(self.data, SplitData):  # dataset.holdout / subset: the training items
            self.data = self.data.train
        if self.data.info.kind != "image":
            raise GanError(f"dataset '{cfg.name}' holds {self.data.info.kind}, not images; "
                           f"gan eval measures images")
        self.indices = _subset(len(self.data), n, seed)

    def __len__(self):
        return len(self.indices)

    def describe(self):
        config = OmegaConf.to_container(OmegaConf.structured(self.cfg), enum_to_str=True)
        if "root" in config:  # relative roots name different data from different folders
            config["root"] = str(Path(config["root"]).expanduser().resolve())
        return {"kind": self.kind, "config": config, "items": len(self.data),
                "used": len(self), "seed": self.seed}

    def batches(self, batch_size):
        from gancli.data.base import StreamedData, TensorData

        if isinstance(self.data, TensorData) and self.data.x.dtype == torch.uint8:
            for i in range(0, len(self), batch_size):
                yield self.data.x[self.indices[i:i + batch_size]]
            return
        if not isinstance(self.data, StreamedData):  # e.g. translation data: its domain B
            for chunk in self.data.real_samples(len(self), self.seed).split(batch_size):
                yield to_uint8(chunk)
            return
        loader = DataLoader(_Quantized(self.data.dataset, self.indices.tolist()),
                            batch_size=batch_size, num_workers=self.num_workers)
        yield from loader


class CheckpointSource(Source):
    """n images drawn from a checkpoint's generator (the EMA copy when there is one), turned
    into uint8 exactly as `gan sample out=dir/` would save them; with `truncation` and
    `standing_stats`, drawn as `gan sample truncation= standing_stats=` draws. The labels of
    the last pass over the batches (conditional models) are kept in `labels`."""

    kind = "checkpoint"

    def __init__(self, ckpt: str | Path, n: int, seed: int, device: torch.device,
                 ema: bool = True, truncation: float | None = None, standing_stats: int = 0):
        from gancli.sampling import load_gan

        self.path = Path(ckpt).expanduser().resolve()
        self.gan, self.state = load_gan(self.path, device, ema)
        if self.gan.info.kind != "image":
            raise GanError(f"{self.path} is a model of {self.gan.info.kind}, not images; "
                           f"gan eval measures images")
        self.n, self.seed, self.device = n, seed, device
        self.ema = ema and self.state.get("ema") is not None
        self.truncation, self.standing_stats = truncation, standing_stats
        self.labels: torch.Tensor | None = None

    def __len__(self):
        return self.n

    def dataset_config(self):
        """The run's dataset block, read as data: a checkpoint never makes gan eval download
        anything or create folders (download is off; pass real= to measure against other
        data)."""
        from gancli.training.checkpoint import stored_config

        dataset = stored_config(self.state, self.path).dataset
        if hasattr(dataset, "download"):
            dataset.download = False
        return dataset

    def describe(self):
        about = {"kind": self.kind, "path": str(self.path), "step": self.state.get("step"),
                 "used": self.n, "seed": self.seed, "ema": self.ema}
        if self.truncation is not None:
            about["truncation"] = self.truncation
        if self.standing_stats:
            about["standing_stats"] = self.standing_stats
        return about

    def batches(self, batch_size):
        from gancli.sampling import generate_batches, standing_statistics

        labels = []
        with self.gan.truncation(self.truncation):
            if self.standing_stats:
                standing_statistics(self.gan, self.standing_stats, batch_size, self.device,
                                    self.seed)
            for x, y in generate_batches(self.gan, self.n, self.device, self.seed, batch_size):
                if y is not None:
                    labels.append(y.cpu())
                yield to_uint8(x)
        self.labels = torch.cat(labels) if labels else None


def dataset_names() -> list[str]:
    from gancli.config import group_options

    return group_options("dataset")


def dataset_config(name: str):
    """The typed config block of conf/dataset/<name>.yaml."""
    from gancli.config import _typed
    from gancli.registry import DATASETS

    block = OmegaConf.load(str(files("gancli.conf") / "dataset" / f"{name}.yaml"))
    return _typed(DATASETS.get(str(block.name)).config, block, "dataset")


def open_source(spec: str, role: str, n: int, seed: int, device: torch.device,
                num_workers: int | None = None, ema: bool = True) -> Source:
    """`real=` / `fake=` values: a folder, an .npz file, a checkpoint (.pt) or a dataset name."""
    path = Path(spec).expanduser()
    if spec.endswith(".npz"):
        return NpzSource(path, n, seed)
    if path.is_dir():
        return FolderSource(path, n, seed, num_workers)
    if spec.endswith(".pt"):
        return CheckpointSource(path, n, seed, device, ema)
    if spec in dataset_names():
        return DatasetSource(dataset_config(spec), n, seed, num_workers=num_workers)
    raise GanError(f"{role}={spec} is not a folder, an .npz file, a checkpoint (.pt) or a "
                   f"dataset name ({', '.join(dataset_names())})")

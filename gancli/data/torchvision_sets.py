"""Datasets from disk or the network through torchvision: mnist, fashion_mnist, cifar10,
celeba, and `folder` (any directory of images, class subfolders give labels).

The small ones (MNIST, Fashion-MNIST, CIFAR-10) are loaded whole into memory as uint8.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gancli.data.base import DataInfo, StreamedData, TensorData
from gancli.data.splits import SplitOptions
from gancli.data.transforms import resize_uint8
from gancli.errors import ConfigError, GanError
from gancli.registry import DATASETS

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


@dataclass
class TorchvisionConfig(SplitOptions):
    name: str = "mnist"
    root: str = "data"  # where the files are, or are downloaded to
    download: bool = True  # download into root when missing (needs the network)
    split: str = "train"  # the dataset's own split: train or test
    resolution: int | None = None  # None keeps the native size


class OnBadFile(Enum):
    fail = "fail"  # stop before training, naming the file
    skip = "skip"  # leave it out, with a warning naming it


@dataclass
class FolderConfig(SplitOptions):
    name: str = "folder"
    root: str = "data/images"  # folder searched for images; first-level subfolders are classes
    resolution: int = 64  # images are resized and center-cropped to this size
    channels: int = 3  # 3 for RGB, 1 for grayscale
    on_bad_file: OnBadFile = OnBadFile.fail  # a file that does not decode
    strict: bool = False  # a resume on a changed file list: refuse (true) or warn (false)


def _open(factory, name: str, cfg: TorchvisionConfig):
    """Construct a torchvision dataset; any failure becomes one line naming the fix."""
    root = Path(cfg.root).expanduser()
    try:
        return factory(root)
    except Exception as err:  # torchvision raises RuntimeError, URLError, OSError, ...
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        how = ("it could not be downloaded (no network?)" if cfg.download
               else "dataset.download=false")
        raise GanError(
            f"dataset '{name}' not found under {root.resolve()} and {how}: {reason}. "
            f"Fix: run once with network and dataset.download=true, or copy the files there "
            f"and set dataset.root"
        ) from None


def _in_memory(name: str, images: np.ndarray, labels, classes: int, cfg) -> TensorData:
    x = torch.as_tensor(np.asarray(images), dtype=torch.uint8)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # to (N, C, H, W)
    x = resize_uint8(x.contiguous(), cfg.resolution)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    return TensorData(DataInfo(name, "image", tuple(x.shape[1:]), classes), x, y)


def _mnist_like(name: str, cls_name: str):
    def build(cfg: TorchvisionConfig) -> TensorData:
        import torchvision.datasets as tvd

        factory = getattr(tvd, cls_name)
        ds = _open(lambda root: factory(root, train=cfg.split == "train",
                                        download=cfg.download), name, cfg)
        return _in_memory(name, ds.data, ds.targets, 10, cfg)

    return build


DATASETS.register("mnist", TorchvisionConfig)(_mnist_like("mnist", "MNIST"))
DATASETS.register("fashion_mnist", TorchvisionConfig)(_mnist_like("fashion_mnist", "FashionMNIST"))
DATASETS.register("cifar10", TorchvisionConfig)(_mnist_like("cifar10", "CIFAR10"))


class _ConvertMode:
    """PIL mode conversion as a picklable callable (DataLoader workers pickle transforms)."""

    def __init__(self, channels: int):
        self.mode = "RGB" if channels == 3 else "L"

    def __call__(self, image):
        return image.convert(self.mode)


def _image_transform(resolution: int, channels: int, crop: int | None = None):
    import torchvision.transforms as T

    steps = [_ConvertMode(channels)]
    if crop:
        steps.append(T.CenterCrop(crop))
    steps += [T.Resize(resolution), T.CenterCrop(resolution), T.ToTensor(),
              T.Normalize([0.5] * channels, [0.5] * channels)]
    return T.Compose(steps)


class _Unlabeled(Dataset):
    """Drops the labels of a torchvision dataset (CelebA's are attributes, not classes)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i][0], 0


@DATASETS.register("celeba", TorchvisionConfig)
def build_celeba(cfg: TorchvisionConfig) -> StreamedData:
    import torchvision.datasets as tvd

    resolution = cfg.resolution or 64
    transform = _image_transform(resolution, 3, crop=178)
    ds = _open(lambda root: tvd.CelebA(root, split=cfg.split, download=cfg.download,
                                       transform=transform), "celeba", cfg)
    return StreamedData(DataInfo("celeba", "image", (3, resolution, resolution)), _Unlabeled(ds))


def _regular_image_files(root: Path) -> list[Path]:
    """Image files below root, by suffix; FIFOs, sockets and devices named like images are
    not files to read (opening a FIFO would wait forever), so they are left out."""
    return sorted(p for p in root.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _decode_problem(path: Path) -> str | None:
    """Why the file does not decode in full (None when it does). A decompression bomb
    (more pixels than PIL's limit) is refused at its header, before any pixel is read."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "decompression bomb: more pixels than PIL's safety limit"
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'corrupt'}"
    except MemoryError:
        return "too large to decode in memory"
    return None


class ImageFiles(Dataset):
    """Every image file below a folder. When all files sit in first-level subfolders, each
    subfolder is a class (ImageFolder's convention); otherwise there are no labels.

    Every file is decoded once, in full, before training, so a corrupt one is found now and
    not mid-epoch: it stops the run naming it, or with on_bad_file=skip is left out with a
    warning."""

    def __init__(self, root: Path, transform, on_bad_file: OnBadFile = OnBadFile.fail):
        self.root, self.transform = root, transform
        self.files = _regular_image_files(root)
        if not self.files:
            raise GanError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
        self._check_files(OnBadFile(on_bad_file))
        parents = {p.parent for p in self.files}
        self.classes = sorted(p.name for p in parents) if root not in parents else []
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = [index[p.parent.name] if self.classes else 0 for p in self.files]
        self.fingerprint = self._fingerprint()

    def _check_files(self, on_bad_file: OnBadFile) -> None:
        bad = [(path, why) for path in self.files if (why := _decode_problem(path))]
        if not bad:
            return
        if on_bad_file is OnBadFile.fail:
            path, why = bad[0]
            raise GanError(f"{len(bad)} unreadable image file(s) under {self.root}, e.g. "
                           f"{path} ({why}); remove or replace them, or set "
                           f"dataset.on_bad_file=skip")
        for path, why in bad:
            print(f"warning: skipping unreadable image {path} ({why})", file=sys.stderr)
        dropped = {path for path, _ in bad}
        self.files = [p for p in self.files if p not in dropped]
        if not self.files:
            raise GanError(f"no readable image files under {self.root}")

    def _fingerprint(self) -> str:
        """A hash of the file list (paths relative to the root, and sizes)."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(f"{path.relative_to(self.root).as_posix()}\0"
                          f"{path.stat().st_size}\n".encode())
        return f"files:{len(self.files)}:{digest.hexdigest()[:16]}"

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        try:
            with Image.open(self.files[i]) as im:
                return self.transform(im), self.labels[i]
        except (OSError, ValueError) as err:
            raise GanError(f"cannot decode image {self.files[i]}: {err}") from None


@DATASETS.register("folder", FolderConfig)
def build_folder(cfg: FolderConfig) -> StreamedData:
    if cfg.channels not in (1, 3):
        raise ConfigError(f"dataset.channels must be 1 or 3, got {cfg.channels}")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise GanError(f"dataset folder {root.resolve()} does not exist; set dataset.root")
    files = ImageFiles(root, _image_transform(cfg.resolution, cfg.channels), cfg.on_bad_file)
    shape = (cfg.channels, cfg.resolution, cfg.resolution)
    info = DataInfo("folder", "image", shape, len(files.classes), fingerprint=files.fingerprint)
    return StreamedData(info, files)

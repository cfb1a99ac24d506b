"""Translation datasets read from image files, in the layouts the CycleGAN/pix2pix reference
(junyanz/pytorch-CycleGAN-and-pix2pix) ships.

- `cyclegan_folder`: `dataset.root` holds trainA/ trainB/ testA/ testB/ (unpaired).
- `paired`: aligned pairs, either side-by-side A|B images in root/train/ and root/test/ (or
  val/), as pix2pix's datasets ship (`dataset.layout=side_by_side`), or the cyclegan_folder
  layout with matching file names in trainA/ and trainB/, testA/ and testB/ (`folders`).
- The reference's named datasets (`dataset=horse2zebra`, `dataset=facades`, ...): the same
  readers on root/<name>/, downloaded from the reference's public URL when missing (offline:
  one line saying where to put the files).

Images may be grey, RGB or RGBA (alpha dropped) and any size: each is converted to
`dataset.channels`, resized so its shorter side is `load_size` (the reference's
resize_and_crop works on squares; this keeps the aspect), cropped to `crop_size` (random
position for training, centre for test items) and flipped left-right at random
(`dataset.flip`). Paired A and B get the same crop and flip. The training draws use torch's
global generator, which checkpoints carry, so a resumed run reads the same crops.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from gancli.data.base import DataInfo, StreamedData
from gancli.data.torchvision_sets import IMAGE_SUFFIXES
from gancli.data.translation import TranslationData
from gancli.errors import ConfigError, GanError
from gancli.registry import DATASETS

CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
CYCLEGAN_NAMES = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo",
                  "cezanne2photo", "ukiyoe2photo", "vangogh2photo", "iphone2dslr_flower",
                  "ae_photos", "grumpifycat")
PIX2PIX_NAMES = ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and p.is_file())


def read_pixels(path: Path, channels: int) -> torch.Tensor:
    """An image file as float (channels, H, W) in [-1, 1]; alpha is dropped."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            pixels = torch.from_numpy(np.array(im, dtype=np.uint8))
    except (OSError, ValueError) as err:
        raise GanError(f"cannot decode image {path}: {str(err).splitlines()[0]}") from None
    pixels = pixels.unsqueeze(0) if pixels.dim() == 2 else pixels.permute(2, 0, 1)
    return pixels.float().div(127.5).sub(1)


def resize_short_side(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    scale = side / min(h, w)
    size = (max(side, round(h * scale)), max(side, round(w * scale)))
    if size == (h, w):
        return x
    return F.interpolate(x.unsqueeze(0), size=size, mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp(-1, 1)


def load_image(path: Path, channels: int, side: int) -> torch.Tensor:
    """A file resized (shorter side) and centre-cropped to side x side, in [-1, 1]."""
    return centre_crop(resize_short_side(read_pixels(path, channels), side), side)


def centre_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - side) // 2, (w - side) // 2
    return x[..., top:top + side, left:left + side]


def random_crop_flip(x: torch.Tensor, side: int, flip: bool) -> torch.Tensor:
    h, w = x.shape[-2:]
    top = int(torch.randint(h - side + 1, ()))
    left = int(torch.randint(w - side + 1, ()))
    x = x[..., top:top + side, left:left + side]
    if flip and torch.rand(()) < 0.5:
        x = x.flip(-1)
    return x


@dataclass
class TranslationFilesConfig:
    name: str = "cyclegan_folder"
    root: str = "data/translation"  # the folder holding trainA/ trainB/ testA/ testB/
    channels: int = 3  # 1 (grey) or 3 (RGB) for both domains
    load_size: int = 286  # images are resized so their shorter side is this
    crop_size: int = 256  # then cropped to this square (random for training)
    flip: bool = True  # random left-right flips of training images
    # a named dataset (dataset.name=horse2zebra, facades, ...): fetch it from the reference's
    # URL when <root>/<name>/ is missing; a folder of your own is never downloaded
    download: bool = True

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise ConfigError(f"dataset.channels must be 1 or 3, got {self.channels}")
        if self.crop_size < 1 or self.load_size < self.crop_size:
            raise ConfigError(f"dataset.load_size ({self.load_size}) must be >= "
                              f"dataset.crop_size ({self.crop_size}) >= 1")


class TrainImages(Dataset):
    """Training files, each read, resized, randomly cropped and flipped; with `split`, a
    side-by-side A|B image is cut into its halves first and both get the same crop."""

    def __init__(self, files: list[Path], cfg: TranslationFilesConfig, split: bool = False,
                 partner: list[Path] | None = None):
        self.files, self.cfg, self.split, self.partner = files, cfg, split, partner

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        cfg = self.cfg
        x = read_pixels(self.files[i], cfg.channels)
        if self.split:
            x = torch.cat(halves(x, self.files[i]))
        elif self.partner is not None:  # B at A's size, so one crop fits both
            x = torch.cat([x, resize_exact(read_pixels(self.partner[i], cfg.channels),
                                           x.shape[-2:])])
        x = resize_short_side(x, cfg.load_size)
        return random_crop_flip(x, cfg.crop_size, cfg.flip), 0


def resize_exact(x: torch.Tensor, size) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x.unsqueeze(0), size=tuple(size), mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp(-1, 1)


def halves(x: torch.Tensor, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A side-by-side A|B image -> (A, B)."""
    w = x.shape[-1]
    if w < 2:
        raise GanError(f"{path} is {w} pixel(s) wide: not a side-by-side A|B pair")
    return x[..., :w // 2], x[..., w // 2:2 * (w // 2)]


def _files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise GanError(f"{what} folder {folder} is missing; the layout is "
                       f"{folder.parent}/trainA, trainB, testA, testB")
    files = image_files(folder)
    if not files:
        raise GanError(f"{what} folder {folder} holds no image files "
                       f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _test_items(files: list[Path], cfg: TranslationFilesConfig) -> torch.Tensor:
    return torch.stack([load_image(p, cfg.channels, cfg.crop_size) for p in files])


def _info(name: str, cfg: TranslationFilesConfig, fingerprint: str) -> DataInfo:
    return DataInfo(name, "image", (cfg.channels, cfg.crop_size, cfg.crop_size), 0,
                    domains=2, fingerprint=fingerprint)


def _fingerprint(*groups: list[Path]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for files in groups:
        for p in files:
            digest.update(f"{p.as_posix()}\0{p.stat().st_size}\n".encode())
    return f"files:{sum(map(len, groups))}:{digest.hexdigest()[:16]}"


def read_unpaired(root: Path, cfg: TranslationFilesConfig, name: str) -> TranslationData:
    train_a, train_b = _files(root / "trainA", "domain A"), _files(root / "trainB", "domain B")
    test_a, test_b = _files(root / "testA", "test A"), _files(root / "testB", "test B")
    info = _info(name, cfg, _fingerprint(train_a, train_b))
    domain = DataInfo(name, "image", info.shape)
    return TranslationData(info, (_test_items(test_a, cfg), None),
                           (_test_items(test_b, cfg), None),
                           a=StreamedData(domain, TrainImages(train_a, cfg)),
                           b=StreamedData(domain, TrainImages(train_b, cfg)))


def _existing_root(cfg, holding: str) -> Path:
    """dataset.root, `~` expanded; a missing folder is one line saying what it should hold."""
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise GanError(f"dataset folder {root} does not exist; set dataset.root to a folder "
                       f"holding {holding}")
    return root


@DATASETS.register("cyclegan_folder", TranslationFilesConfig)
def build_cyclegan_folder(cfg: TranslationFilesConfig) -> TranslationData:
    return read_unpaired(_existing_root(cfg, "trainA/ trainB/ testA/ testB/"), cfg,
                         "cyclegan_folder")


# --- paired --------------------------------------------------------------------------------


class Layout(Enum):
    side_by_side = "side_by_side"  # root/train/*.jpg and root/test/ (or val/): A|B in one image
    folders = "folders"  # root/trainA/ trainB/ testA/ testB/ with matching file names


@dataclass
class PairedConfig(TranslationFilesConfig):
    name: str = "paired"
    root: str = "data/pairs"  # the folder holding train/ and test/ (or the four folders)
    layout: Layout = Layout.side_by_side  # side_by_side (pix2pix's) | folders
    load_size: int = 286  # images are resized so their shorter side is this
    crop_size: int = 256  # then cropped to this square (random for training)


def _matched(a_dir: Path, b_dir: Path) -> tuple[list[Path], list[Path]]:
    a = {p.relative_to(a_dir).with_suffix("").as_posix(): p for p in _files(a_dir, "domain A")}
    b = {p.relative_to(b_dir).with_suffix("").as_posix(): p for p in _files(b_dir, "domain B")}
    unmatched = sorted(set(a) ^ set(b))
    if unmatched:
        raise GanError(f"{len(unmatched)} file name(s) of {a_dir} and {b_dir} have no partner, "
                       f"e.g. {unmatched[0]}; paired folders need matching names")
    names = sorted(a)
    return [a[n] for n in names], [b[n] for n in names]


def read_paired(root: Path, cfg: PairedConfig, name: str) -> TranslationData:
    if cfg.layout is Layout.folders:
        train_a, train_b = _matched(root / "trainA", root / "trainB")
        test_a, test_b = _matched(root / "testA", root / "testB")
        train = TrainImages(train_a, cfg, partner=train_b)
        tests = [torch.cat([load_image(a, cfg.channels, cfg.crop_size),
                            load_image(b, cfg.channels, cfg.crop_size)])
                 for a, b in zip(test_a, test_b, strict=True)]
        fingerprint = _fingerprint(train_a, train_b)
    else:
        test_dir = root / "test" if (root / "test").is_dir() else root / "val"
        train_files, test_files = _files(root / "train", "training pairs"), \
            _files(test_dir, "test pairs (test/ or val/)")
        train = TrainImages(train_files, cfg, split=True)
        tests = []
        for path in test_files:
            a, b = halves(read_pixels(path, cfg.channels), path)
            tests.append(torch.cat([load_image_tensor(a, cfg.crop_size),
                                    load_image_tensor(b, cfg.crop_size)]))
        fingerprint = _fingerprint(train_files)
    info = _info(name, cfg, fingerprint)
    pair_info = DataInfo(name, "image", (2 * cfg.channels, cfg.crop_size, cfg.crop_size))
    test = torch.stack(tests)
    c = cfg.channels
    return TranslationData(info, (test[:, :c], None), (test[:, c:], None),
                           pairs=StreamedData(pair_info, train))


def load_image_tensor(x: torch.Tensor, side: int) -> torch.Tensor:
    return centre_crop(resize_short_side(x, side), side)


@DATASETS.register("paired", PairedConfig)
def build_paired(cfg: PairedConfig) -> TranslationData:
    return read_paired(_existing_root(cfg, "train/ and test/ (side-by-side A|B images)"), cfg,
                       "paired")


# --- the reference's named datasets --------------------------------------------------------


@dataclass
class NamedUnpairedConfig(TranslationFilesConfig):
    name: str = "horse2zebra"
    root: str = "data"  # the dataset is read from (or downloaded to) <root>/<name>/


@dataclass
class NamedPairedConfig(PairedConfig):
    name: str = "facades"
    root: str = "data"  # the dataset is read from (or downloaded to) <root>/<name>/


def fetch(url: str, root: Path, name: str, layout: str) -> Path:
    """Download and unpack `url` into root/ (it unpacks to root/<name>/); one line when it
    cannot, saying where the files go."""
    target = root / name
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            archive = Path(tmp) / url.rsplit("/", 1)[-1]
            with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as f:
                shutil.copyfileobj(response, f)
            if archive.suffix == ".zip":
                with zipfile.ZipFile(archive) as z:
                    z.extractall(tmp)
            else:
                with tarfile.open(archive) as t:
                    t.extractall(tmp, filter="data")
            shutil.move(str(Path(tmp) / name), str(target))
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as err:
        reason = getattr(err, "reason", None) or err
        raise GanError(f"cannot download {url} ({str(reason).splitlines()[0]}); put the files "
                       f"at {target}/ ({layout}) and run again") from None
    return target


def _named_root(cfg, url: str, layout: str) -> Path:
    target = Path(cfg.root).expanduser() / cfg.name
    if target.is_dir():
        return target
    if not cfg.download:
        raise GanError(f"dataset {cfg.name} is not at {target}/; put the files there "
                       f"({layout}) or set dataset.download=true")
    return fetch(url.format(name=cfg.name), target.parent, cfg.name, layout)


def build_named_unpaired(cfg: NamedUnpairedConfig) -> TranslationData:
    root = _named_root(cfg, CYCLEGAN_URL, "trainA/ trainB/ testA/ testB/")
    return read_unpaired(root, cfg, cfg.name)


def build_named_paired(cfg: NamedPairedConfig) -> TranslationData:
    root = _named_root(cfg, PIX2PIX_URL, "train/ and test/ or val/ of A|B images")
    return read_paired(root, cfg, cfg.name)


for _name in CYCLEGAN_NAMES:
    DATASETS.register(_name, NamedUnpairedConfig)(build_named_unpaired)
for _name in PIX2PIX_NAMES:
    DATASETS.register(_name, NamedPairedConfig)(build_named_paired)

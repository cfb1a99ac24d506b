"""The Inception-v3 that FID is defined with: TensorFlow's 2015-12-05 graph as ported to PyTorch
by pytorch-fid, with the same module names, so its weights file loads as is.

It differs from torchvision's Inception-v3 where the TF graph does: average pools that do not
count padding, a max pool in the last block's pool branch, and 1008 output classes. Inputs are
resized to 299x299 (bilinear, align_corners=False) and scaled to [-1, 1], as pytorch-fid does.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gancli.errors import GanError

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_NAME)
WEIGHTS_SHA256_PREFIX = "6726825d"  # torch hub's convention: the name carries the hash prefix
DOWNLOAD_TIMEOUT_S = 20
INPUT_SIZE = 299
FEATURE_DIM = 2048  # pool3
NUM_CLASSES = 1008


class ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as in the TF graph), ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool(x):
    # TF's average pool divides by the number of real (unpadded) inputs
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool(x)),
        ], 1)


class BlockB(nn.Module):  # grid reduction 35 -> 17
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class BlockC(nn.Module):  # factorized 7x7 convolutions
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x):
        dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            self.branch7x7dbl_5(self.branch7x7dbl_4(dbl)),
            self.branch_pool(_avg_pool(x)),
        ], 1)


class BlockD(nn.Module):  # grid reduction 17 -> 8
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            self.branch7x7x3_4(self.branch7x7x3_3(b7)),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class BlockE(nn.Module):  # expanded filter bank; `max_pool` marks the last block (see module doc)
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
            self.branch_pool(pooled),
        ], 1)


class FIDInceptionV3(nn.Module):
    """uint8 images (N, 1 or 3, H, W) -> pool3 features (N, 2048) and logits (N, 1008).

    The logits are `features @ fc.weight.T` without the bias, the Inception Score's definition.
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, max_pool=False)
        self.Mixed_7c = BlockE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """uint8 -> float in [-1, 1] at 299x299, in pytorch-fid's order of operations
        (ToTensor's /255, bilinear resize, then 2x - 1) so the inputs match bit for bit."""
        x = images.float().div(255)
        if x.shape[1] == 1:  # grayscale: PIL's convert("RGB") repeats the channel
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                          align_corners=False)
        return 2 * x - 1

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed input -> pool3 features."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(self.preprocess(images))
        return feats, feats @ self.fc.weight.T


def default_weights_path() -> Path:
    """Where torch hub (and so pytorch-fid) keeps the file: a copy there is shared by both."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url,
                                                              timeout=DOWNLOAD_TIMEOUT_S) as r:
            while chunk := r.read(1 << 20):
                f.write(chunk)
                digest.update(chunk)
        if not digest.hexdigest().startswith(WEIGHTS_SHA256_PREFIX):
            raise OSError(f"downloaded file has sha256 {digest.hexdigest()[:8]}..., "
                          f"expected {WEIGHTS_SHA256_PREFIX}...")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def resolve_weights(path: str | Path | None = None) -> Path:
    """The weights file: `path` when given, else torch hub's copy, downloaded when missing."""
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise GanError(f"inception_weights={path} does not exist")
        return path
    dest = default_weights_path()
    if dest.is_file():
        return dest
    try:
        _download(WEIGHTS_URL, dest)
    except Exception as err:  # URLError, timeouts, HTTP errors, a bad hash
        reason = str(getattr(err, "reason", None) or err).splitlines()[0]
        raise GanError(
            f"the FID Inception weights are not on disk and could not be downloaded ({reason}); "
            f"download {WEIGHTS_URL} and save it as {dest}, or pass inception_weights=PATH"
        ) from None
    return dest


def load_fid_inception(path: str | Path | None = None,
                       device: torch.device | str = "cpu") -> FIDInceptionV3:
    """The FID network with pytorch-fid's weights file loaded (strictly), in eval mode."""
    weights = resolve_weights(path)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:
        raise GanError(f"cannot read Inception weights {weights}: {err}") from None
    with torch.random.fork_rng(devices=[]):  # the random init must not move the caller's RNG
        model = FIDInceptionV3()
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise GanError(f"{weights} is not the FID Inception weights file "
                       f"({str(err).splitlines()[0]})") from None
    return model.to(device).eval().requires_grad_(False)

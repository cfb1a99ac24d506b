"""Feature extractors: uint8 images -> (features, logits), each describing its protocol (what
changes its numbers), which goes into the results and into the real-statistics cache key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

import numpy as np
import torch

from gancli.metrics import classifier, inception


class ExtractorName(Enum):
    inception = "inception"  # the FID Inception-v3: comparable with published FIDs
    mnist = "mnist"  # this project's MNIST classifier: offline, comparable only within gancli


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class Extractor:
    name: str
    metric_prefix: str  # "" for Inception metrics, "mnist_" for the classifier's
    protocol: dict
    model: torch.nn.Module

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class InceptionExtractor(Extractor):
    name, metric_prefix = "inception", ""

    def __init__(self, device: torch.device, weights: str | None = None):
        path = inception.resolve_weights(weights)
        # channels_last runs the convolutions about twice as fast on CPUs (and helps cuDNN)
        self.model = inception.load_fid_inception(path, device).to(
            memory_format=torch.channels_last)
        self.protocol = {
            "extractor": "FID Inception-v3 (TF 2015-12-05 graph, pytorch-fid's port)",
            "weights": str(path), "weights_sha256": file_sha256(path),
            "features": "pool3, 2048-d",
            "logits": "pool3 @ fc.weight (1008 classes, no bias)",
            "resize": f"bilinear to {inception.INPUT_SIZE}x{inception.INPUT_SIZE}, "
                      "align_corners=False, no antialias (pytorch-fid)",
            "input": "uint8 RGB (grey repeated) / 255, resized, then 2x-1",
        }

    def __call__(self, images):
        x = self.model.preprocess(images).contiguous(memory_format=torch.channels_last)
        feats = self.model.features(x)
        return feats, feats @ self.model.fc.weight.T


class MnistExtractor(Extractor):
    name, metric_prefix = "mnist", "mnist_"

    def __init__(self, device: torch.device):
        self.model = classifier.load_mnist_classifier(device)
        self.protocol = {
            "extractor": "gancli mnist5k classifier",
            "weights": str(classifier.WEIGHTS_PATH),
            "weights_sha256": file_sha256(classifier.WEIGHTS_PATH),
            "features": f"penultimate layer, {classifier.FEATURE_DIM}-d",
            "logits": f"{classifier.NUM_CLASSES} digit classes",
            "resize": f"grey (channel mean), bilinear antialiased to {classifier.RESOLUTION}x"
                      f"{classifier.RESOLUTION}",
            "input": "uint8 / 127.5 - 1",
        }

    def __call__(self, images):
        feats = self.model.features(images)
        return feats, self.model.head(feats)


def build_extractor(name: ExtractorName | str, device: torch.device,
                    inception_weights: str | None = None) -> Extractor:
    name = ExtractorName(name)
    if name is ExtractorName.mnist:
        return MnistExtractor(device)
    return InceptionExtractor(device, inception_weights)


@torch.inference_mode()
def extract(extractor: Extractor, batches: Iterable[torch.Tensor], device: torch.device,
            on_batch=None) -> tuple[np.ndarray, np.ndarray]:
    """Features and logits (float32, on the CPU) of every uint8 image batch."""
    feats, logits = [], []
    for images in batches:
        f, lg = extractor(images.to(device, non_blocking=True))
        feats.append(f.float().cpu())
        logits.append(lg.float().cpu())
        if on_batch is not None:
            on_batch(images.shape[0])
    if not feats:
        raise ValueError("no images to extract features from")
    return torch.cat(feats).numpy(), torch.cat(logits).numpy()

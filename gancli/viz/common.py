"""What the viz commands share: a run's folder and checkpoint, its real data, and features."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import torch

from gancli.errors import ConfigError, GanError

CLASSIFIER_NOTE = "gancli's MNIST classifier (128-d penultimate features)"


class Features(Enum):
    classifier = "classifier"  # gancli's MNIST classifier, 128-d: offline
    inception = "inception"  # the FID Inception-v3 pool3, 2048-d (weights file needed)
    d = "d"  # the discriminator's input to its last layer
    latent = "latent"  # the codes of a model with an encoder (`encode(x)`)
    pixels = "pixels"  # the raw values, flattened


def save_figure(fig, out: str | Path, dpi: int) -> Path:
    """Write a matplotlib figure (creating the folder) and free it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out


def checkpoint_path(ckpt: str | Path) -> Path:
    path = Path(ckpt).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise GanError(f"no checkpoint at {path}; pass a run directory or a .pt file")
    return path


def run_dir_of(ckpt: str | Path) -> Path:
    path = Path(ckpt).expanduser()
    return path if path.is_dir() else path.parent.parent


def run_name(run_dir: Path) -> str:
    return run_dir.resolve().name


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def real_items(data, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n training items in [-1, 1] (a seeded subset) and their labels (None without)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=gen)[:n]
    if data.labels() is None:
        return data.real_samples(n, seed), None
    x, y = data.items(idx)
    return x, y


def all_training_items(data) -> torch.Tensor:
    """Every training item in [-1, 1], in order."""
    return data.items(torch.arange(len(data)))[0] if data.labels() is not None else \
        data.real_samples(len(data), 0)


class FeatureFn:
    """samples in data space (N, ...) -> features (N, F) on the CPU, in batches."""

    def __init__(self, kind: Features, gan, device: torch.device,
                 inception_weights: str | None = None, batch_size: int = 200):
        self.kind, self.gan, self.device, self.batch_size = kind, gan, device, batch_size
        self.describe = kind.value
        image = gan.info.kind == "image"
        if kind in (Features.classifier, Features.inception) and not image:
            raise ConfigError(f"features={kind.value} needs an image model; this one makes "
                              f"{gan.info.kind}: use features=pixels")
        if kind is Features.classifier:
            from gancli.metrics.classifier import load_mnist_classifier

            self.model = load_mnist_classifier(device)
            self.describe = CLASSIFIER_NOTE
        elif kind is Features.inception:
            from gancli.metrics.extractors import InceptionExtractor

            self.model = InceptionExtractor(device, inception_weights)
            self.describe = "FID Inception-v3 pool3 (2048-d)"
        elif kind is Features.latent:
            if not callable(getattr(gan, "encode", None)):
                raise ConfigError(f"features=latent needs a model with an encoder (an encode(x) "
                                  f"method); model {type(gan).__name__} has none: use "
                                  f"features=classifier, inception, d or pixels")
            self.describe = "the model's encoder codes"
        elif kind is Features.d:
            if getattr(gan, "D", None) is None:
                raise ConfigError(f"features=d needs a model with a discriminator; model "
                                  f"{type(gan).__name__} has none")
            if getattr(gan, "pack", 1) > 1:
                raise ConfigError("features=d scores packs of samples (model.pack > 1), not "
                                  "single ones; use another features=")
            self.last = last_layer(gan.D)
            self.describe = f"D's input to its last layer ({type(self.last).__name__})"

    @torch.no_grad()
    def _batch(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        x = x.to(self.device)
        if self.kind is Features.classifier:
            return self.model.features(x)
        if self.kind is Features.inception:
            from gancli.images import to_uint8

            return self.model(to_uint8(x).to(self.device))[0]
        if self.kind is Features.latent:
            code = self.gan.encode(x)
            code = code[0] if isinstance(code, tuple) else code  # (mu, logvar) -> mu
            return code.reshape(len(x), -1)
        if self.kind is Features.d:
            seen = []
            hook = self.last.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
            try:
                self.gan.discriminate(x, None if y is None else y.to(self.device))
            finally:
                hook.remove()
            return seen[-1].reshape(len(x), -1)
        return x.reshape(len(x), -1)

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = []
        for i in range(0, len(x), self.batch_size):
            yi = None if y is None else y[i:i + self.batch_size]
            out.append(self._batch(x[i:i + self.batch_size], yi).float().cpu())
        return torch.cat(out)


def last_layer(module: torch.nn.Module) -> torch.nn.Module:
    """The last Linear or convolution registered in a network: its input is the network's
    final feature vector."""
    layers = [m for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    if not layers:
        raise ConfigError(f"{type(module).__name__} has no Linear or Conv2d layer to read "
                          f"features from")
    return layers[-1]


def predicted_classes(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    from gancli.metrics.classifier import load_mnist_classifier

    clf = load_mnist_classifier(device)
    return torch.cat([clf.predict(x[i:i + 500].to(device)).cpu() for i in range(0, len(x), 500)])

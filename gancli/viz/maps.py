"""`gan viz`: real and generated samples embedded in 2D by t-SNE or PCA (scikit-learn), coloured
by source and by class; for 2D point data, the points themselves. The numbers behind the
picture go to an .npz file beside it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import torch

from gancli.devices import resolve_device
from gancli.errors import ConfigError
from gancli.viz.common import (
    FeatureFn,
    Features,
    checkpoint_path,
    predicted_classes,
    pyplot,
    real_items,
    run_dir_of,
    run_name,
    save_figure,
)

REAL_COLOR, FAKE_COLOR = "#7f7f7f", "#d62728"


class Method(Enum):
    tsne = "tsne"
    pca = "pca"


@dataclass
class MapArgs:
    ckpt: str = ""  # required: a run directory or checkpoint
    method: Method = Method.tsne  # tsne (sklearn TSNE) or pca (sklearn PCA)
    features: Features = Features.classifier  # what is embedded (classifier, inception, ...)
    n: int = 2000  # real samples, and as many generated ones
    out: str = "map.png"  # the picture; the numbers go to an .npz beside it
    seed: int = 0  # latent noise, the real subset and the embedding
    perplexity: float = 30.0  # t-SNE's perplexity
    device: str = "auto"  # auto, cpu or cuda
    ema: bool = True  # use the EMA generator when the checkpoint has one
    inception_weights: str | None = None  # features=inception: weights file (default: hub)

    def __post_init__(self):
        self.method, self.features = Method(self.method), Features(self.features)
        if not self.ckpt:
            raise ConfigError("ckpt is required: gan viz ckpt=outputs/<run> method=tsne")
        if self.n < 10:
            raise ConfigError(f"n must be >= 10, got {self.n}")
        if self.perplexity <= 0:
            raise ConfigError(f"perplexity must be > 0, got {self.perplexity}")
        if Path(self.out).suffix.lower() not in (".png", ".pdf", ".svg", ".jpg"):
            raise ConfigError(f"out={self.out}: use a .png, .pdf, .svg or .jpg file")


def embed(features: np.ndarray, method: Method, seed: int, perplexity: float) -> np.ndarray:
    """(N, F) -> (N, 2) with scikit-learn; features are standardised per dimension first."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = features.astype(np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    if method is Method.pca:
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if x.shape[1] > 50 and len(x) > 50:  # the usual t-SNE preprocessing: PCA to 50 dims
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    perplexity = min(perplexity, (len(x) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                n_jobs=1).fit_transform(x)


def compute_map(args: MapArgs) -> dict:
    """Everything the picture shows, as arrays and strings."""
    from gancli.config import from_container
    from gancli.data import build_dataset
    from gancli.sampling import generate, load_gan

    device = resolve_device(args.device)
    ckpt = checkpoint_path(args.ckpt)
    gan, state = load_gan(ckpt, device, args.ema)
    # 2D points are shown as themselves (an encoder's codes still go through the method)
    points = gan.info.kind == "points" and args.features is not Features.latent
    feature_fn = None if points else FeatureFn(args.features, gan, device,
                                                args.inception_weights)
    data = build_dataset(from_container(state["config"]).dataset)
    real, real_y = real_items(data, args.n, args.seed)
    fake, fake_y = generate(gan, args.n, device, args.seed, 256)
    classes_of_fake = "none"
    if gan.info.num_classes:
        if gan.info.kind == "image" and gan.info.num_classes == 10:
            fake_y, classes_of_fake = predicted_classes(fake, device), "classifier prediction"
        elif fake_y is not None:
            classes_of_fake = "requested label"
    if points:
        xy = torch.cat([real, fake]).numpy()
        method, features = "identity", "the 2D points"
    else:
        feats = torch.cat([feature_fn(real, real_y), feature_fn(fake, fake_y)]).numpy()
        xy = embed(feats, args.method, args.seed, args.perplexity)
        method, features = args.method.value, feature_fn.describe
    labels = None
    if real_y is not None and fake_y is not None:
        labels = torch.cat([real_y, fake_y.cpu()]).numpy()
    return {"xy": xy.astype(np.float32), "generated": np.r_[np.zeros(len(real), bool),
                                                           np.ones(len(fake), bool)],
            "labels": labels, "method": method, "features": features,
            "classes_of_generated": classes_of_fake, "run": run_name(run_dir_of(args.ckpt)),
            "step": int(state.get("step", 0)), "ckpt": str(ckpt)}


def map_figure(result: dict):
    plt = pyplot()
    xy, gen, labels = result["xy"], result["generated"], result["labels"]
    panels = 2 if labels is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 6), squeeze=False)
    ax = axes[0, 0]
    ax.scatter(*xy[~gen].T, s=4, c=REAL_COLOR, alpha=0.6, label=f"real ({(~gen).sum()})")
    ax.scatter(*xy[gen].T, s=4, c=FAKE_COLOR, alpha=0.6, label=f"generated ({gen.sum()})")
    ax.set_title("by source")
    ax.legend(loc="best", markerscale=3)
    if labels is not None:
        ax = axes[0, 1]
        cmap = plt.get_cmap("tab10" if labels.max() < 10 else "tab20")
        for c in np.unique(labels):
            color = cmap(int(c) % cmap.N)
            sel = labels == c
            ax.scatter(*xy[sel & ~gen].T, s=5, color=color, marker="o", alpha=0.5)
            ax.scatter(*xy[sel & gen].T, s=12, color=color, marker="x", alpha=0.7,
                       linewidths=0.8)
            ax.scatter([], [], s=30, color=color, marker="s", label=f"class {int(c)}")
        ax.scatter([], [], s=20, c="k", marker="o", label="real")
        ax.scatter([], [], s=20, c="k", marker="x", label="generated")
        ax.set_title(f"by class (generated: {result['classes_of_generated']})")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    for a in axes[0]:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(f"{result['run']}, step {result['step']}: {result['method']} of "
                 f"{result['features']}")
    fig.tight_layout()
    return fig


def draw_map(result: dict, out: str | Path) -> Path:
    return save_figure(map_figure(result), out, dpi=110)


def save_numbers(result: dict, path: Path) -> Path:
    arrays = {"xy": result["xy"], "generated": result["generated"],
              **{k: np.array(result[k]) for k in ("method", "features", "run", "step",
                                                  "classes_of_generated")}}
    if result["labels"] is not None:
        arrays["labels"] = result["labels"]
    np.savez(path, **arrays)
    return path


def run_map(args: MapArgs) -> tuple[Path, Path]:
    result = compute_map(args)
    out = draw_map(result, args.out)
    return out, save_numbers(result, out.with_suffix(".npz"))

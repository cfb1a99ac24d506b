"""`gan nn`: the memorisation check. Each generated sample beside its k nearest training
items (in classifier or Inception features, or pixels), with the distances; and the
distribution of nearest-training-item distances of generated samples against that of real
items the run never trained on (`dataset.holdout`). A generator that copies its training set
puts its samples much closer to training items than fresh real data lies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gancli.devices import resolve_device
from gancli.errors import ConfigError
from gancli.viz.common import (
    FeatureFn,
    Features,
    all_training_items,
    checkpoint_path,
    pyplot,
    run_dir_of,
    run_name,
)


@dataclass
class NeighbourArgs:
    ckpt: str = ""  # required: a run directory or checkpoint
    n: int = 8  # generated samples shown, one a row
    k: int = 5  # nearest training items beside each
    features: Features = Features.classifier  # classifier | inception | pixels (| d | latent)
    m: int | None = None  # generated samples in the distance distribution (default: as many
    #                       as there are held-out items, else 1000)
    out: str = "nn.png"  # the picture; the distances go to .json and .npz beside it
    # an .npz with a 'samples' array (what `gan sample out=x.npz` writes) to check instead of
    # the checkpoint's generator; the checkpoint still names the training and held-out data
    fake: str | None = None
    seed: int = 0  # latent noise
    device: str = "auto"  # auto, cpu or cuda
    ema: bool = True  # use the EMA generator when the checkpoint has one
    inception_weights: str | None = None  # features=inception: weights file (default: hub)

    def __post_init__(self):
        self.features = Features(self.features)
        if not self.ckpt:
            raise ConfigError("ckpt is required: gan nn ckpt=outputs/<run> n=8 k=5")
        for key in ("n", "k"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be > 0, got {getattr(self, key)}")
        if self.m is not None and self.m < 2:
            raise ConfigError(f"m must be >= 2, got {self.m}")
        if Path(self.out).suffix.lower() != ".png":
            raise ConfigError(f"out={self.out}: use a .png file")


def nearest(query: torch.Tensor, bank: torch.Tensor, k: int,
            chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distances and indices of each query row's k nearest rows of `bank`."""
    dists, idx = [], []
    for i in range(0, len(query), chunk):
        d = torch.cdist(query[i:i + chunk].double(), bank.double())
        v, j = d.topk(min(k, len(bank)), dim=1, largest=False)
        dists.append(v.float())
        idx.append(j)
    return torch.cat(dists), torch.cat(idx)


def samples_from_npz(path: str) -> torch.Tensor:
    """The 'samples' array of an .npz file as floats in [-1, 1] (uint8 is rescaled)."""
    if not Path(path).is_file():
        raise ConfigError(f"fake={path}: no such file")
    with np.load(path) as data:
        if "samples" not in data:
            raise ConfigError(f"fake={path} holds no 'samples' array")
        x = torch.from_numpy(data["samples"])
    return x.float().div(127.5).sub(1) if x.dtype == torch.uint8 else x.float()


def _stats(d: np.ndarray) -> dict:
    return {"n": int(len(d)), "mean": float(d.mean()), "median": float(np.median(d)),
            "p10": float(np.percentile(d, 10)), "p90": float(np.percentile(d, 90))}


def compute_neighbours(args: NeighbourArgs) -> dict:
    from gancli.config import from_container
    from gancli.data import build_dataset
    from gancli.sampling import generate, load_gan

    device = resolve_device(args.device)
    ckpt = checkpoint_path(args.ckpt)
    gan, state = load_gan(ckpt, device, args.ema)
    if gan.info.kind != "image":
        raise ConfigError("gan nn shows images next to images; this model makes "
                          f"{gan.info.kind}")
    features = FeatureFn(args.features, gan, device, args.inception_weights)
    data = build_dataset(from_container(state["config"]).dataset)
    train = all_training_items(data)
    held_out = data.held_out[0] if data.held_out is not None else None
    m = args.m or (len(held_out) if held_out is not None else 1000)
    if args.fake:
        fake = samples_from_npz(args.fake)
        m = min(m, len(fake))
    else:
        fake, _ = generate(gan, max(m, args.n), device, args.seed, 256)
    train_f = features(train)
    fake_f = features(fake)
    fake_d, fake_i = nearest(fake_f, train_f, args.k)
    result = {
        "run": run_name(run_dir_of(args.ckpt)), "step": int(state.get("step", 0)),
        "ckpt": str(ckpt), "features": features.describe, "train_items": len(train),
        "samples": args.fake or "the checkpoint's generator",
        "fake": fake[:args.n], "train": train, "nn_index": fake_i[:args.n],
        "nn_dist": fake_d[:args.n], "generated_to_train": fake_d[:m, 0].numpy(),
        "held_out_to_train": None,
    }
    if held_out is not None:
        result["held_out_to_train"] = nearest(features(held_out), train_f, 1)[0][:, 0].numpy()
    return result


def summary(result: dict) -> dict:
    out = {"run": result["run"], "step": result["step"], "samples": result["samples"],
           "features": result["features"],
           "train_items": result["train_items"],
           "generated_to_train": _stats(result["generated_to_train"])}
    if result["held_out_to_train"] is not None:
        held = _stats(result["held_out_to_train"])
        out["held_out_to_train"] = held
        out["median_ratio_generated_over_held_out"] = (
            out["generated_to_train"]["median"] / max(held["median"], 1e-12))
    return out


def draw_neighbours(result: dict, out: str | Path) -> Path:
    plt = pyplot()
    from gancli.images import to_uint8

    fake, train = to_uint8(result["fake"]), to_uint8(result["train"])
    n, k = result["nn_index"].shape
    fig = plt.figure(figsize=(1.25 * (k + 1) + 5.5, max(1.3 * n, 4)))
    # a narrow empty column keeps the histogram's axis labels off the images
    grid = fig.add_gridspec(n, k + 3, width_ratios=[1] * (k + 1) + [0.7, 4.2], wspace=0.15)

    def show(ax, image, title):
        array = image.permute(1, 2, 0).numpy()
        ax.imshow(array[:, :, 0] if array.shape[2] == 1 else array, cmap="gray", vmin=0,
                  vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=7, pad=2)

    for r in range(n):
        show(fig.add_subplot(grid[r, 0]), fake[r], "generated" if r == 0 else "")
        for j in range(k):
            idx = int(result["nn_index"][r, j])
            show(fig.add_subplot(grid[r, j + 1]), train[idx],
                 f"#{idx} d={float(result['nn_dist'][r, j]):.2f}")
    ax = fig.add_subplot(grid[:, k + 2])
    gen = result["generated_to_train"]
    held = result["held_out_to_train"]
    both = gen if held is None else np.r_[gen, held]
    bins = np.linspace(0, float(both.max()) * 1.05 + 1e-9, 40)
    ax.hist(gen, bins=bins, alpha=0.6, color="#d62728",
            label=f"generated ({len(gen)}), median {np.median(gen):.2f}")
    if held is not None:
        ax.hist(held, bins=bins, alpha=0.6, color="#1f77b4",
                label=f"held-out real ({len(held)}), median {np.median(held):.2f}")
    else:
        ax.text(0.02, 0.98, "no held-out items: train with dataset.holdout=k to compare",
                transform=ax.transAxes, va="top", fontsize=7)
    ax.set_xlabel("distance to the nearest training item")
    ax.set_ylabel("count")
    ax.legend(fontsize=7)
    ax.set_title("nearest-training-item distances", fontsize=9)
    source = "" if result["samples"].startswith("the checkpoint") else \
        f" (samples from {Path(result['samples']).name})"
    fig.suptitle(f"{result['run']}, step {result['step']}{source}: {k} nearest of "
                 f"{result['train_items']} training items in {result['features']}",
                 fontsize=10)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out


def run_neighbours(args: NeighbourArgs) -> tuple[Path, Path, dict]:
    result = compute_neighbours(args)
    picture = draw_neighbours(result, args.out)
    numbers = summary(result)
    path = picture.with_suffix(".json")
    path.write_text(json.dumps(numbers, indent=2) + "\n")
    np.savez(picture.with_suffix(".npz"), generated_to_train=result["generated_to_train"],
             **({"held_out_to_train": result["held_out_to_train"]}
                if result["held_out_to_train"] is not None else {}))
    return picture, path, numbers

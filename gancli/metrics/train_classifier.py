"""Train the MNIST classifier used by `gan eval extractor=mnist` and write its weights file.

    python -m gancli.metrics.train_classifier            # rewrites the committed file
    python -m gancli.metrics.train_classifier --out x.pt --epochs 2
    python -m gancli.metrics.train_classifier --out robust.pt --augment robust

100 digits of each class are held out of mnist5k's 5,000 (chosen by a seeded permutation) and
never trained on; the accuracy on them is stored in the file and printed. CPU, about a minute.
`--augment robust` adds elastic distortion, blur and noise to the shifts: a second opinion on
generated digits, which are seldom as clean as MNIST's (the committed file uses shifts only).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gancli.data.embedded import load_mnist5k
from gancli.metrics.classifier import FORMAT, WEIGHTS_PATH, MnistClassifier

HELD_OUT_PER_CLASS = 100
SPLIT_SEED = 1234


def held_out_split(labels: torch.Tensor, per_class: int = HELD_OUT_PER_CLASS,
                   seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, test): `per_class` test digits of each class, the rest for training."""
    gen = torch.Generator().manual_seed(seed)
    test = []
    for c in range(int(labels.max()) + 1):
        idx = torch.nonzero(labels == c).flatten()
        test.append(idx[torch.randperm(len(idx), generator=gen)[:per_class]])
    test_idx = torch.cat(test).sort().values
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[test_idx] = False
    return torch.nonzero(mask).flatten(), test_idx


def random_shift(x: torch.Tensor, gen: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Translate each image by up to `pixels` in x and y, filling with background: digits drawn
    by a generator are not always centred the way MNIST's are."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (pixels,) * 4, value=-1.0)
    offsets = torch.randint(0, 2 * pixels + 1, (x.shape[0], 2), generator=gen)
    out = torch.empty_like(x)
    for dy, dx in offsets.unique(dim=0).tolist():
        rows = ((offsets[:, 0] == dy) & (offsets[:, 1] == dx)).nonzero().flatten()
        out[rows] = padded[rows, :, dy:dy + h, dx:dx + w]
    return out


BLUR = torch.tensor([1.0, 4, 6, 4, 1]).outer(torch.tensor([1.0, 4, 6, 4, 1])) / 256  # sigma ~1


def robust_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """random_shift, then for some of the images a smooth random warp (half), a blur (30%) and
    pixel noise (30%, sd up to 0.3): the ways a generated digit departs from a clean one."""
    x = random_shift(x, gen)
    n = x.shape[0]
    warp = torch.rand(n, generator=gen) < 0.5
    if warp.any():
        x[warp] = elastic_warp(x[warp], gen)
    blur = torch.rand(n, generator=gen) < 0.3
    if blur.any():
        x[blur] = F.conv2d(x[blur], BLUR[None, None], padding=2)
    noisy = torch.rand(n, 1, 1, 1, generator=gen) < 0.3
    sd = 0.3 * torch.rand(n, 1, 1, 1, generator=gen) * noisy
    return (x + sd * torch.randn(x.shape, generator=gen)).clamp(-1, 1)


def elastic_warp(x: torch.Tensor, gen: torch.Generator, pixels: float = 1.0) -> torch.Tensor:
    """Move each pixel by a smooth random field (drawn on a 7x7 grid, sd `pixels` pixels)."""
    n, _, h, w = x.shape
    field = torch.randn(n, 2, 7, 7, generator=gen) * (2 * pixels / w)
    field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False)
    grid = F.affine_grid(torch.eye(2, 3).expand(n, 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid + field.permute(0, 2, 3, 1), align_corners=False,
                         padding_mode="border")


AUGMENTS = {"shift": random_shift, "robust": robust_augment}


@torch.no_grad()
def accuracy(model: MnistClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    return float((model.predict(images) == labels).double().mean())


def train(images: torch.Tensor, labels: torch.Tensor, epochs: int = 15, batch_size: int = 64,
          lr: float = 2e-3, seed: int = 0, augment: str = "shift") -> MnistClassifier:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MnistClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(images) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    x_all = model.prepare(images)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(images), generator=gen)
        for i in range(0, len(perm) - batch_size + 1, batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(model.head(model.body(AUGMENTS[augment](x_all[idx], gen))),
                                   labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment", choices=AUGMENTS, default="shift",
                        help="shift (the committed file) or robust (+ warp, blur, noise)")
    args = parser.parse_args(argv)

    # Convolutions this small run as fast on one thread, and the result then does not depend
    # on the machine's core count.
    torch.set_num_threads(1)
    images, labels = load_mnist5k()
    train_idx, test_idx = held_out_split(labels)
    start = time.perf_counter()
    model = train(images[train_idx], labels[train_idx], epochs=args.epochs, seed=args.seed,
                  augment=args.augment)
    acc = accuracy(model, images[test_idx], labels[test_idx])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "state_dict": model.state_dict(), "test_accuracy": acc,
                "held_out_per_class": HELD_OUT_PER_CLASS, "split_seed": SPLIT_SEED,
                "epochs": args.epochs, "seed": args.seed, "augment": args.augment}, args.out)
    print(f"trained on {len(train_idx)} digits in {time.perf_counter() - start:.0f}s; "
          f"held-out accuracy {acc:.4f} on {len(test_idx)} digits; wrote {args.out} "
          f"({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()

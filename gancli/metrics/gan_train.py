"""GAN-train and GAN-test (Shmelkov, Schmid & Alahari, "How good is my GAN?", ECCV 2018) on the
mnist5k digits, with this project's small classifier (gancli/metrics/classifier.py).

- GAN-train: the classifier trained on N generated, labeled samples only (a class-conditional
  model's requested labels), tested on the 1,000 held-out real digits; beside it, the same
  classifier trained the same way on N real training digits. Close to the real baseline: the
  samples are diverse and right enough to learn the classes from.
- GAN-test: the classifier trained on real digits (the committed one: 4,000 digits, the same
  recipe) tested on N generated samples against their requested labels: how recognisable the
  samples are (high even for a generator that has collapsed onto few good samples per class).

The held-out digits are the classifier's (`train_classifier.held_out_split`: 100 per class,
split seed 1234). A GAN trained with `dataset.holdout=100 dataset.split_seed=1234` never saw
them; the result says whether it did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from gancli.config import require_positive
from gancli.devices import resolve_device
from gancli.errors import ConfigError
from gancli.images import to_uint8

MNIST5K = "mnist5k"


@dataclass
class GanTrainArgs:
    ckpt: str | None = None  # a checkpoint or run folder; the default: the latest run
    n: int | None = None  # generated samples (default: as many as real training digits, 4000)
    epochs: int = 15  # classifier training epochs (the committed classifier's recipe)
    seed: int = 0  # latent noise and classifier training
    device: str = "auto"  # auto, cpu or cuda
    ema: bool = True  # use the EMA generator when the checkpoint has one
    batch_size: int = 256  # generated samples per batch, and classifier batch size
    out: str | None = None  # also write the results as JSON here

    def __post_init__(self):
        if self.n is not None and self.n < 10:
            raise ConfigError(f"n must be >= 10, got {self.n}")
        for key in ("epochs", "batch_size"):
            require_positive(key, getattr(self, key))


def saw_test_digits(dataset_cfg) -> bool:
    """Whether a GAN trained on `dataset_cfg` may have seen the classifier's held-out digits."""
    from gancli.metrics.train_classifier import HELD_OUT_PER_CLASS, SPLIT_SEED

    holdout = getattr(dataset_cfg, "holdout", 0)
    return not (holdout >= HELD_OUT_PER_CLASS and getattr(dataset_cfg, "split_seed", 0)
                == SPLIT_SEED)


def run_gan_train_test(args: GanTrainArgs, gan_train: bool, gan_test: bool) -> dict:
    from gancli.config import from_container
    from gancli.data.embedded import load_mnist5k
    from gancli.metrics.classifier import load_mnist_classifier
    from gancli.metrics.evaluate import latest_checkpoint
    from gancli.metrics.train_classifier import accuracy, held_out_split, train
    from gancli.sampling import generate, load_gan

    start = time.perf_counter()
    device = resolve_device(args.device)
    ckpt = args.ckpt or str(latest_checkpoint())
    gan, state = load_gan(ckpt, device, args.ema)
    cfg = from_container(state["config"])
    if not gan.conditional:
        raise ConfigError("--gan-train / --gan-test need a class-conditional model (cgan, "
                          "acgan) whose samples carry labels; this checkpoint's generator "
                          "takes none")
    if cfg.dataset.name != MNIST5K:
        raise ConfigError(f"--gan-train / --gan-test judge mnist5k digits with gancli's "
                          f"classifier; this model was trained on {cfg.dataset.name}")
    images, labels = load_mnist5k()
    train_idx, test_idx = held_out_split(labels)
    n = args.n or len(train_idx)
    fake, fake_y = generate(gan, n, device, args.seed, args.batch_size)
    fake = to_uint8(fake)  # as `gan sample` writes PNG files
    fake_y = fake_y.cpu()
    test_x, test_y = images[test_idx], labels[test_idx]
    result = {"ckpt": str(ckpt), "step": int(state.get("step", 0)), "n_generated": n,
              "n_test_real": len(test_idx), "epochs": args.epochs, "seed": args.seed,
              "gan_saw_test_digits": saw_test_digits(cfg.dataset), "metrics": {}}
    torch.manual_seed(args.seed)
    if gan_train:
        model = train(fake, fake_y, epochs=args.epochs, seed=args.seed)
        result["metrics"]["gan_train_accuracy"] = accuracy(model, test_x, test_y)
        n_real = min(n, len(train_idx))
        real_idx = train_idx[torch.randperm(len(train_idx),
                                            generator=torch.Generator().manual_seed(
                                                args.seed))[:n_real]].sort().values
        model = train(images[real_idx], labels[real_idx], epochs=args.epochs, seed=args.seed)
        result["metrics"]["real_train_accuracy"] = accuracy(model, test_x, test_y)
        result["n_real_train"] = n_real
    if gan_test:
        clf = load_mnist_classifier("cpu")
        result["metrics"]["gan_test_accuracy"] = accuracy(clf, fake, fake_y)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def print_gan_train_test(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    m = result["metrics"]
    table = Table(title=f"GAN-train / GAN-test, {result['ckpt']} (step {result['step']})")
    table.add_column("measure")
    table.add_column("accuracy", justify="right")
    table.add_column("what", overflow="fold")
    n, test = result["n_generated"], result["n_test_real"]
    if "gan_train_accuracy" in m:
        table.add_row("GAN-train", f"{m['gan_train_accuracy']:.4f}",
                      f"classifier trained on {n} generated labeled samples, tested on {test} "
                      f"held-out real digits")
        table.add_row("real-train", f"{m['real_train_accuracy']:.4f}",
                      f"the same classifier trained on {result['n_real_train']} real digits, "
                      f"same test")
    if "gan_test_accuracy" in m:
        table.add_row("GAN-test", f"{m['gan_test_accuracy']:.4f}",
                      f"the real-trained classifier (4000 real digits) on {n} generated "
                      f"samples vs their requested labels")
    note = ("note: the GAN was trained on the held-out test digits too (train it with "
            "dataset.holdout=100 dataset.split_seed=1234 to keep them out)"
            if result["gan_saw_test_digits"] else "the GAN never saw the test digits")
    table.caption = f"{note}; {result['epochs']} epochs, seed {result['seed']}, " \
                    f"{result['seconds']} s"
    Console().print(table)

"""Label and code benchmarks on mnist5k, judged by the project's MNIST classifier
(gancli/metrics/classifier.py, trained on mnist5k; 100 held-out digits per class).

- cgan / acgan / biggan: the fraction of samples drawn with label=c that the classifier
  assigns to c, for 100 samples of each class;
- infogan: the mutual information between the categorical code c1 and the classifier's
  predicted digit over 10,000 samples, next to its maximum (log 10) and its chance level (the
  same estimate after shuffling the codes), and the best one-to-one matching accuracy;
- sgan: the held-out accuracy of D as a classifier, and of the supervised baseline trained on
  the same labels by the same run (metrics.jsonl, last evaluation).

Each benchmark trains its recipe, conf/experiment/<name>_mnist5k.yaml, with the real training
loop into <runs>/<name> (skipped when that folder already holds a final checkpoint), then
measures the final checkpoint (its EMA generator when it has one):

    python benchmarks/labels.py cgan infogan sgan          # train and measure all three
    python benchmarks/labels.py cgan --runs outputs/labels --seed 1
    python benchmarks/labels.py cgan --ckpt outputs/<run>/checkpoints/last.pt   # measure only
    python benchmarks/labels.py sgan --set model.baseline_steps=2000   # extra overrides
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from common import train_recipe

from gancli.metrics.classifier import load_mnist_classifier
from gancli.metrics.labels import (
    best_matching_accuracy,
    chance_mutual_information,
    mutual_information,
    nats_to_bits,
    per_class_accuracy,
)
from gancli.sampling import generate_batches, load_gan

BENCHMARKS = ("cgan", "acgan", "biggan", "infogan", "sgan")
PER_CLASS = 100  # samples of each requested class (cgan, acgan, biggan)
INFO_SAMPLES = 10_000  # samples for the code / predicted-digit mutual information


def conditional_accuracy(ckpt: Path, seed: int) -> dict:
    gan, _ = load_gan(ckpt, torch.device("cpu"))
    clf = load_mnist_classifier()
    requested, predicted = [], []
    for c in range(gan.info.num_classes):
        for x, y in generate_batches(gan, PER_CLASS, torch.device("cpu"), seed + c, PER_CLASS,
                                     label=c):
            requested.append(y)
            predicted.append(clf.predict(x))
    requested, predicted = torch.cat(requested), torch.cat(predicted)
    return {"accuracy": float((requested == predicted).double().mean()),
            "per_class": per_class_accuracy(requested, predicted, gan.info.num_classes)}


def code_information(ckpt: Path, seed: int) -> dict:
    gan, _ = load_gan(ckpt, torch.device("cpu"))
    clf = load_mnist_classifier()
    k = gan.categorical[0]
    codes, digits = [], []
    for code, images in _latent_batches(gan, seed):
        codes.append(code)
        digits.append(clf.predict(images))
    code, digit = torch.cat(codes), torch.cat(digits)
    mi = mutual_information(code, digit, k, 10)
    chance = chance_mutual_information(code, digit, k, 10)
    return {"mi_nats": mi, "mi_bits": nats_to_bits(mi), "chance_nats": chance,
            "chance_bits": nats_to_bits(chance), "max_nats": math.log(min(k, 10)),
            "matching_accuracy": best_matching_accuracy(code, digit, k, 10)}


@torch.no_grad()
def _latent_batches(gan, seed: int, batch_size: int = 500):
    """(c1 of each latent, the image G makes of it), batch by batch."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(INFO_SAMPLES // batch_size):
        z = gan.sample_latent(batch_size, torch.device("cpu"), generator=gen)
        yield gan.codes(z)[0][0], gan.generate(z)


def sgan_accuracy(run_dir: Path) -> dict:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if "test_acc" in r][-1]
    return {"step": last["step"], "test_acc": last["test_acc"],
            "baseline_acc": last.get("baseline_acc", math.nan)}


def measure(name: str, run_dir: Path, ckpt: Path, seed: int) -> dict:
    if name in ("cgan", "acgan", "biggan"):
        return conditional_accuracy(ckpt, seed)
    if name == "infogan":
        return code_information(ckpt, seed)
    return sgan_accuracy(run_dir)


def report(name: str, values: dict, seconds: dict | None) -> None:
    took = (f" (trained in {seconds['wall_s'] / 60:.1f} min wall, "
            f"{seconds['cpu_s'] / 60:.1f} min CPU)" if seconds else "")
    print(f"\n== {name}{took}")
    if name in ("cgan", "acgan", "biggan"):
        per = " ".join(f"{c}:{a:.2f}" for c, a in enumerate(values["per_class"]))
        print(f"samples classified as their requested class: {values['accuracy']:.3f} "
              f"({PER_CLASS} per class; the must-show bar is 0.90)\nper class: {per}")
    elif name == "infogan":
        print(f"I(c1; predicted digit) = {values['mi_nats']:.3f} nats "
              f"({values['mi_bits']:.3f} bits) over {INFO_SAMPLES} samples; chance level "
              f"{values['chance_nats']:.4f} nats ({values['chance_bits']:.4f} bits); "
              f"maximum {values['max_nats']:.3f} nats\nbest one-to-one code -> digit "
              f"matching accuracy: {values['matching_accuracy']:.3f} (chance 0.1)")
    else:
        print(f"held-out accuracy at step {values['step']}: SGAN D {values['test_acc']:.3f}, "
              f"supervised baseline {values['baseline_acc']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=BENCHMARKS)
    parser.add_argument("--runs", type=Path, default=Path("outputs/labels"),
                        help="run directories go to RUNS/<name>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for training (default 1: on a small machine shared "
                             "with other work, 2 threads were 10-20x slower than 1)")
    parser.add_argument("--ckpt", type=Path, help="measure this checkpoint; train nothing")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra Hydra overrides for the recipes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.names:
        run_dir = args.runs / name if args.ckpt is None else args.ckpt.parent.parent
        seconds = None
        if args.ckpt is None:
            seconds = train_recipe(f"{name}_mnist5k", run_dir, args.seed, args.threads,
                                   args.set)
        ckpt = args.ckpt or run_dir / "checkpoints" / "last.pt"
        report(name, measure(name, run_dir, ckpt, args.seed), seconds)


if __name__ == "__main__":
    main()

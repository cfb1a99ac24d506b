"""Mode-collapse benchmark on PacGAN's 2D mixtures (ring8, grid25) and on Stacked MNIST.

Trains each method over several seeds with the real training loop, draws samples from each
final checkpoint (the EMA generator when the run keeps one), and prints mean ± std next to the
published numbers:

- ring8, grid25 (PacGAN Table 1): the modes captured, the percentage of high-quality samples
  and the reverse KL of the mode histogram against uniform, on 2,500 samples;
- stacked_mnist (PacGAN Table 3): 26,000 samples, each channel's digit named by the project's
  MNIST classifier; the modes covered (of 1,000) and the KL of the mode histogram against
  uniform. The same measurement on 26,000 real stacked digits is printed as a floor, with the
  classifier's held-out accuracy.

    python benchmarks/mode_coverage.py                       # ring8 and grid25, 5 seeds each
    python benchmarks/mode_coverage.py grid25 --seeds 2
    python benchmarks/mode_coverage.py stacked_mnist --seeds 3 \\
        --method "DCGAN" "+experiment=stacked_mnist_dcgan"
    python benchmarks/mode_coverage.py grid25 --no-ours \\
        --method "no EMA" "+experiment={dataset} train.ema.half_life=null"
    python benchmarks/mode_coverage.py stacked_mnist --classifier robust.pt   # another reader

For stacked_mnist it also prints each method's digit shares (all channels pooled): where the
KL comes from. --classifier names another classifier file (`python -m
gancli.metrics.train_classifier --out robust.pt --augment robust`) to read the digits with.

A method is a name and Hydra overrides for `gan train` ({dataset} stands for the dataset's
name); `+experiment=<dataset>` is the default method. Runs go to a temporary folder unless
--keep DIR is given.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra import compose, initialize_config_module

from gancli.config import Config, validate
from gancli.data import build_dataset
from gancli.errors import GanError
from gancli.metrics.classifier import WEIGHTS_PATH, load_classifier_file, load_mnist_classifier
from gancli.metrics.modes import classify_stacked, label_coverage, mode_coverage
from gancli.sampling import generate, generate_batches, load_gan
from gancli.training.loop import train

MIXTURES = ("ring8", "grid25")
STACKED = "stacked_mnist"
DATASETS = (*MIXTURES, STACKED)
DEFAULT_SAMPLES = {"ring8": 2500, "grid25": 2500, STACKED: 26_000}  # as PacGAN counts
STACKED_MODES = 1000
BATCH = 1000  # images generated and classified at a time

# PacGAN (Lin et al. 2018), Table 1: modes captured, % high-quality samples.
REFERENCES = {
    "grid25": [("GAN (PacGAN Table 1)", 17.3, 94.8), ("PacGAN4 (PacGAN Table 1)", 24.8, 93.6)],
    "ring8": [("PacGAN2 (PacGAN Table 1)", 7.9, 95.6)],
}
# PacGAN Table 3 (Stacked MNIST, DCGAN-style networks, 26,000 samples): modes, KL.
STACKED_REFERENCES = [
    ("DCGAN (PacGAN Table 3)", 99.0, 3.40),
    ("Unrolled GAN (PacGAN Table 3)", 48.7, 4.32),
    ("VEEGAN (PacGAN Table 3)", 150.0, 2.95),
    ("PacDCGAN2 (PacGAN Table 3)", 1000.0, 0.06),
    ("PacDCGAN4 (PacGAN Table 3)", 1000.0, 0.07),
]


@dataclass
class Run:
    modes: int
    high_quality: float  # nan for stacked_mnist (every classified sample counts)
    reverse_kl: float
    seconds: float  # wall clock of the training run
    cpu_seconds: float  # CPU time it used: on a shared machine, what the run itself cost
    digit_shares: list[float] | None = None  # stacked_mnist: % of each digit, channels pooled


def compose_run(dataset: str, overrides: list[str], seed: int) -> Config:
    with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
        raw = compose(config_name="config",
                      overrides=[f"dataset={dataset}", *overrides, f"seed={seed}"])
    return validate(raw)


def mixture_scores(cfg: Config, run_dir: Path, samples: int) -> tuple[int, float, float]:
    device = torch.device("cpu")
    gan, _ = load_gan(run_dir, device, ema=True)
    # seed+1: a noise batch other than the one the run's sample grids show
    points, _ = generate(gan, samples, device, seed=cfg.seed + 1, batch_size=samples)
    data = build_dataset(cfg.dataset)
    cov = mode_coverage(points, data.means, data.std)
    return cov.modes, 100 * cov.high_quality, cov.reverse_kl


def stacked_scores(cfg: Config, run_dir: Path, samples: int,
                   classifier: Path = WEIGHTS_PATH) -> tuple[int, float, float, list[float]]:
    """Modes, nan (no quality measure), KL and digit shares of the run's EMA generator."""
    device = torch.device("cpu")
    gan, _ = load_gan(run_dir, device, ema=True)
    reader = load_mnist_classifier(device, classifier)
    labels = torch.cat([classify_stacked(reader, x) for x, _ in
                        generate_batches(gan, samples, device, cfg.seed + 1, BATCH)])
    cov = label_coverage(labels, STACKED_MODES)
    return cov.modes, math.nan, cov.reverse_kl, digit_shares(labels)


def digit_shares(labels: torch.Tensor) -> list[float]:
    """% of each digit 0..9 over the three channels of Stacked MNIST mode labels."""
    digits = torch.cat([labels // 100, labels // 10 % 10, labels % 10])
    return (100 * torch.bincount(digits, minlength=10) / len(digits)).tolist()


def real_stacked_scores(samples: int, seed: int = 0,
                        classifier: Path = WEIGHTS_PATH) -> tuple[int, float]:
    """The same measurement on real Stacked MNIST items: what a perfect generator scores,
    given the classifier's mistakes and the finite sample."""
    cfg = compose_run(STACKED, [], seed)
    data = build_dataset(cfg.dataset)
    reader = load_mnist_classifier("cpu", classifier)
    images = data.real_samples(samples, seed)
    labels = torch.cat([classify_stacked(reader, x) for x in images.split(BATCH)])
    cov = label_coverage(labels, STACKED_MODES)
    return cov.modes, cov.reverse_kl


def run_once(cfg: Config, run_dir: Path, samples: int, classifier: Path = WEIGHTS_PATH) -> Run:
    start, cpu_start = time.perf_counter(), time.process_time()
    train(cfg, run_dir)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    if cfg.dataset.name == STACKED:
        modes, quality, kl, shares = stacked_scores(cfg, run_dir, samples, classifier)
        return Run(modes, quality, kl, seconds, cpu_seconds, shares)
    return Run(*mixture_scores(cfg, run_dir, samples), seconds, cpu_seconds)


def mean_std(values: list[float], digits: int = 2) -> str:
    if any(math.isnan(v) for v in values):
        return "nan"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def table(rows: list[tuple[str, str, list[Run]]]) -> str:
    lines = ["| dataset | method | modes | high quality (%) | reverse KL | wall s / run "
             "| CPU s / run |", "|---|---|---|---|---|---|---|"]
    for dataset, name, runs in rows:
        lines.append(
            f"| {dataset} | {name} | {mean_std([r.modes for r in runs])} "
            f"| {mean_std([r.high_quality for r in runs])} "
            f"| {mean_std([r.reverse_kl for r in runs], 3)} "
            f"| {statistics.mean(r.seconds for r in runs):.0f} "
            f"| {statistics.mean(r.cpu_seconds for r in runs):.0f} |"
        )
        for ref_name, modes, quality in REFERENCES.get(dataset, []) if name == "ours" else []:
            lines.append(f"| {dataset} | {ref_name} | {modes} | {quality} | | | |")
    return "\n".join(lines)


def stacked_table(rows: list[tuple[str, list[Run]]], samples: int, real: tuple[int, float],
                  accuracy: float, reader: str = "gancli's MNIST classifier") -> str:
    lines = ["| method | modes (of 1,000) | KL to uniform | wall s / run | CPU s / run |",
             "|---|---|---|---|---|"]
    for name, runs in rows:
        lines.append(f"| {name} | {mean_std([r.modes for r in runs], 1)} "
                     f"| {mean_std([r.reverse_kl for r in runs], 3)} "
                     f"| {statistics.mean(r.seconds for r in runs):.0f} "
                     f"| {statistics.mean(r.cpu_seconds for r in runs):.0f} |")
    lines.append(f"| real Stacked MNIST (mnist5k digits) | {real[0]} | {real[1]:.3f} | | |")
    lines += [f"| {name} | {modes:g} | {kl:.2f} | | |" for name, modes, kl in STACKED_REFERENCES]
    lines.append(f"\n({samples:,} samples per run; each channel classified by {reader}, "
                 f"held-out accuracy {accuracy:.3f} per digit.)")
    lines += ["\nDigit shares (%, the three channels pooled, mean over seeds; 10 is uniform):",
              "| method | " + " | ".join(map(str, range(10))) + " |", "|---" * 11 + "|"]
    for name, runs in rows:
        shares = [statistics.mean(r.digit_shares[d] for r in runs) for d in range(10)]
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in shares) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="*", help=f"one or more of {', '.join(DATASETS)} "
                        f"(default: {' '.join(MIXTURES)})")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, help="the same, as an option")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samples", type=int,
                        help="samples per run (default: 2,500 for the mixtures, 26,000 for "
                             "stacked_mnist)")
    parser.add_argument("--method", nargs=2, action="append", metavar=("NAME", "OVERRIDES"),
                        help="a method to compare, besides (or with --no-ours, instead of) "
                             "the +experiment=<dataset> recipe")
    parser.add_argument("--no-ours", action="store_true", help="skip +experiment=<dataset>")
    parser.add_argument("--extra", default="", help="overrides added to every method")
    parser.add_argument("--keep", type=Path, help="keep the run folders here")
    parser.add_argument("--classifier", type=Path, default=WEIGHTS_PATH,
                        help="stacked_mnist: the MNIST classifier file that reads the digits "
                             "(default: the committed one)")
    args = parser.parse_args(argv)
    datasets = [*args.dataset, *(args.datasets or [])] or list(MIXTURES)
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset {unknown[0]!r}; choose from {', '.join(DATASETS)}")
    if STACKED in datasets:  # a bad file fails now, not after hours of training
        try:
            accuracy = load_classifier_file(args.classifier)["test_accuracy"]
        except GanError as e:
            parser.error(str(e))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for dataset in datasets:
            methods = [] if args.no_ours else [("ours", f"+experiment={dataset}")]
            methods += [tuple(m) for m in args.method or []]
            samples = args.samples or DEFAULT_SAMPLES[dataset]
            for name, overrides in methods:
                runs = []
                for seed in range(args.seeds):
                    method = overrides.replace("{dataset}", dataset).split()
                    cfg = compose_run(dataset, method + args.extra.split(), seed)
                    run_dir = root / dataset / name.replace(" ", "_") / f"seed{seed}"
                    run = run_once(cfg, run_dir, samples, args.classifier)
                    runs.append(run)
                    quality = ("" if math.isnan(run.high_quality)
                               else f"{run.high_quality:.1f}% high quality, ")
                    print(f"{dataset} {name} seed {seed}: {run.modes} modes, {quality}"
                          f"reverse KL {run.reverse_kl:.3f}, {run.seconds:.0f} s "
                          f"({run.cpu_seconds:.0f} s CPU)", file=sys.stderr, flush=True)
                rows.append((dataset, name, runs))
    mixture_rows = [row for row in rows if row[0] != STACKED]
    if mixture_rows:
        print(table(mixture_rows))
    stacked_rows = [(name, runs) for dataset, name, runs in rows if dataset == STACKED]
    if stacked_rows:
        samples = args.samples or DEFAULT_SAMPLES[STACKED]
        reader = ("gancli's MNIST classifier" if args.classifier == WEIGHTS_PATH
                  else f"the MNIST classifier {args.classifier}")
        print(stacked_table(stacked_rows, samples,
                            real_stacked_scores(samples, classifier=args.classifier),
                            accuracy, reader))
    return 0


if __name__ == "__main__":
    sys.exit(main())

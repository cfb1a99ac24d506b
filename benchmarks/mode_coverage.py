"""Mode-collapse benchmark on PacGAN's 2D mixtures (ring8, grid25).

Trains each method over several seeds with the real training loop, draws samples from each
final checkpoint (the EMA generator when the run keeps one), and prints mean ± std of the modes
captured, the percentage of high-quality samples and the reverse KL of the mode histogram
against uniform, next to the numbers of PacGAN's Table 1.

    python benchmarks/mode_coverage.py                       # our recipes, 5 seeds each
    python benchmarks/mode_coverage.py --datasets grid25 --seeds 2
    python benchmarks/mode_coverage.py --datasets grid25 --no-ours \\
        --method "no EMA" "+experiment={dataset} train.ema.half_life=null"

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
from gancli.metrics.modes import mode_coverage
from gancli.sampling import generate, load_gan
from gancli.training.loop import train

# PacGAN (Lin et al. 2018), Table 1: modes captured, % high-quality samples.
REFERENCES = {
    "grid25": [("GAN (PacGAN Table 1)", 17.3, 94.8), ("PacGAN4 (PacGAN Table 1)", 24.8, 93.6)],
    "ring8": [("PacGAN2 (PacGAN Table 1)", 7.9, 95.6)],
}


@dataclass
class Run:
    modes: int
    high_quality: float
    reverse_kl: float
    seconds: float  # wall clock of the training run
    cpu_seconds: float  # CPU time it used: on a shared machine, what the run itself cost


def compose_run(dataset: str, overrides: list[str], seed: int) -> Config:
    with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
        raw = compose(config_name="config",
                      overrides=[f"dataset={dataset}", *overrides, f"seed={seed}"])
    return validate(raw)


def run_once(cfg: Config, run_dir: Path, samples: int) -> Run:
    start, cpu_start = time.perf_counter(), time.process_time()
    train(cfg, run_dir)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    device = torch.device("cpu")
    gan, _ = load_gan(run_dir, device, ema=True)
    # seed+1: a noise batch other than the one the run's sample grids show
    points, _ = generate(gan, samples, device, seed=cfg.seed + 1, batch_size=samples)
    data = build_dataset(cfg.dataset)
    cov = mode_coverage(points, data.means, data.std)
    return Run(cov.modes, 100 * cov.high_quality, cov.reverse_kl, seconds, cpu_seconds)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["ring8", "grid25"],
                        choices=["ring8", "grid25"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--method", nargs=2, action="append", metavar=("NAME", "OVERRIDES"),
                        help="a method to compare, besides (or with --no-ours, instead of) "
                             "the +experiment=<dataset> recipe")
    parser.add_argument("--no-ours", action="store_true", help="skip +experiment=<dataset>")
    parser.add_argument("--extra", default="", help="overrides added to every method")
    parser.add_argument("--keep", type=Path, help="keep the run folders here")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for dataset in args.datasets:
            methods = [] if args.no_ours else [("ours", f"+experiment={dataset}")]
            methods += [tuple(m) for m in args.method or []]
            for name, overrides in methods:
                runs = []
                for seed in range(args.seeds):
                    method = overrides.replace("{dataset}", dataset).split()
                    cfg = compose_run(dataset, method + args.extra.split(), seed)
                    run_dir = root / dataset / name.replace(" ", "_") / f"seed{seed}"
                    run = run_once(cfg, run_dir, args.samples)
                    runs.append(run)
                    print(f"{dataset} {name} seed {seed}: {run.modes} modes, "
                          f"{run.high_quality:.1f}% high quality, reverse KL "
                          f"{run.reverse_kl:.3f}, {run.seconds:.0f} s ({run.cpu_seconds:.0f} s "
                          f"CPU)", file=sys.stderr, flush=True)
                rows.append((dataset, name, runs))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

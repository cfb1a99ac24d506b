"""What the benchmark scripts share: a run's config composed as `gan train` composes it,
whether a run folder already holds its final checkpoint (so a benchmark measures it instead of
training it again), and a recipe trained and timed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module

from gancli.config import Config, validate
from gancli.training.loop import train


def compose_run(overrides: list[str]) -> Config:
    with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
        return validate(compose(config_name="config", overrides=overrides))


def is_trained(run_dir: Path, steps: int) -> bool:
    last = run_dir / "checkpoints" / "last.pt"
    return last.exists() and torch.load(last, weights_only=True)["step"] >= steps


def train_recipe(recipe: str, run_dir: Path, seed: int, threads: int,
                 overrides: list[str]) -> dict | None:
    """Train `+experiment=<recipe>` on the CPU into run_dir unless it is done (None then);
    the wall seconds and this process's CPU seconds it took."""
    cfg = compose_run([f"+experiment={recipe}", f"seed={seed}", "device=cpu",
                       f"device.threads={threads}", *overrides])
    if is_trained(run_dir, cfg.train.steps):
        print(f"{recipe}: {run_dir} is already trained; measuring it")
        return None
    wall, cpu = time.perf_counter(), time.process_time()
    train(cfg, run_dir)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def model_arguments(doc: str, models, seconds: float, runs: str,
                    grids_help: str) -> argparse.Namespace:
    """The command line of the equal-CPU-time comparisons (baselines.py, karras.py): which
    models, the CPU seconds each, seed, eval size, where runs and grids go, extra overrides;
    torch then uses one thread, so CPU seconds are a fair measure."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help=f"any of {', '.join(models)} (default: all)")
    parser.add_argument("--seconds", type=float, default=seconds, help="CPU seconds per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=2000, help="images per side in gan eval")
    parser.add_argument("--runs", type=Path, default=Path(runs))
    parser.add_argument("--grids", type=Path, default=None, help=grids_help)
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for every run")
    args = parser.parse_args()
    unknown = set(args.models) - set(models)
    if unknown:
        parser.error(f"unknown model {sorted(unknown)[0]}; choose from {', '.join(models)}")
    args.models = args.models or list(models)
    torch.set_num_threads(1)
    return args


def print_table(title: str, header: tuple[str, ...], rows: list[list[str]]) -> None:
    """A Markdown table (as the README shows them) under a line saying how it was measured."""
    print(f"\n{title}")
    print("| " + " | ".join(header) + " |\n|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")

"""What the benchmark scripts share: a run's config composed as `gan train` composes it,
whether a run folder already holds its final checkpoint (so a benchmark measures it instead of
training it again), and a recipe trained and timed."""

from __future__ import annotations

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

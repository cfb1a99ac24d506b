"""What the benchmark scripts share: a run's config composed as `gan train` composes it, and
whether a run folder already holds its final checkpoint (so a benchmark measures it instead of
training it again)."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_module

from gancli.config import Config, validate


def compose_run(overrides: list[str]) -> Config:
    with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
        return validate(compose(config_name="config", overrides=overrides))


def is_trained(run_dir: Path, steps: int) -> bool:
    last = run_dir / "checkpoints" / "last.pt"
    return last.exists() and torch.load(last, weights_only=True)["step"] >= steps

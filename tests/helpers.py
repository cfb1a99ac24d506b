"""Test helpers: compose the real Hydra config with overrides, run the real `gan` command.

Every test is seeded and runs on the CPU with data the project generates or ships.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module

from gancli.config import Config, validate

REPO = Path(__file__).resolve().parents[1]

# Settings that make a training run take a second or two on the CPU.
TINY = [
    "device=cpu",
    "train.steps=4",
    "train.batch_size=16",
    "train.log_every=2",
    "train.sample_every=2",
    "train.ckpt_every=2",
    "train.num_samples=16",
    "model.width_g=8",
    "model.width_d=8",
]


def network(state: dict, name: str) -> dict:
    """One network's weights (e.g. "G") out of a checkpoint's family state_dict."""
    return {k[len(name) + 1:]: v for k, v in state["model"].items() if k.startswith(name + ".")}


def adversarial_step(gan, loss, opt_g, opt_d, options, device=None):
    """`step(batches, step, stats=None)`: one GAN iteration, as the loop runs it."""
    import torch

    from gancli.training.step import StepContext

    ctx = StepContext(loss, {"d": opt_d, "g": opt_g}, options, device or torch.device("cpu"),
                      gan.group_names)
    return lambda batches, step, stats=None: gan.train_step(ctx, batches, step, stats)


def straight_and_resumed(overrides: list[str], tmp_path: Path, steps: int, stop: int
                         ) -> tuple[dict, dict]:
    """The last checkpoints of a run trained straight to `steps` and of one stopped at `stop`
    and resumed to `steps`."""
    from gancli.training.checkpoint import load_checkpoint
    from gancli.training.loop import train

    train(compose_config([*overrides, f"train.steps={steps}"]), tmp_path / "full")
    train(compose_config([*overrides, f"train.steps={stop}"]), tmp_path / "resumed")
    train(compose_config([*overrides, f"train.steps={steps}", f"resume={tmp_path / 'resumed'}"]),
          tmp_path / "resumed")
    return load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "resumed")


def compose_config(overrides: list[str] | None = None) -> Config:
    """The typed config `gan train <overrides>` would run with."""
    with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
        return validate(compose(config_name="config", overrides=list(overrides or [])))


def run_gan(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300):
    """Run the real `gan` command in a subprocess (as a user would); returns CompletedProcess."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "gancli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)

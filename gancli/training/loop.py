"""The training loop: one function, its phases marked, readable top to bottom."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from gancli.config import Config, to_container
from gancli.data import build_dataset
from gancli.errors import ConfigError, GanError
from gancli.images import render, save_png
from gancli.losses import build_loss
from gancli.models import build_model
from gancli.training import distributed
from gancli.training.checkpoint import rng_state, save_checkpoint
from gancli.training.logging import TAGS, RunLogger
from gancli.training.optimizers import build_optimizer
from gancli.training.step import discriminator_step, generator_step

REAL_POINTS_IN_PLOTS = 2000


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GanError("device=cuda but no CUDA device is available; use device=auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(cfg: Config, run_dir: str | Path) -> float:
    """Train a GAN as `cfg` says, writing into run_dir; return the final `train.metric`."""
    run_dir = Path(run_dir)
    t = cfg.train
    if t.metric not in TAGS:
        raise ConfigError(f"train.metric '{t.metric}' is not logged; choose one of: "
                          f"{', '.join(sorted(TAGS))}")

    # Initialize
    dist = distributed.setup(resolve_device(cfg.device.name.value))  # joins torchrun's ranks
    device = dist.device
    seed_everything(distributed.rank_seed(cfg.seed, dist.rank))

    # Load data
    data = build_dataset(cfg.dataset)
    sampler = data.sampler(t.batch_size, cfg.seed, dist.rank, dist.world_size)
    real_for_plots = (data.real_samples(REAL_POINTS_IN_PLOTS, cfg.seed)
                      if data.info.kind == "points" else None)

    # Construct networks, loss and optimizers
    gan = build_model(cfg.model, data.info).to(device)
    loss = build_loss(cfg.loss)
    opt_g = build_optimizer(cfg.optimizer, gan.G.parameters(), "g")
    opt_d = build_optimizer(cfg.optimizer, gan.D.parameters(), "d")
    fixed = torch.Generator(device).manual_seed(cfg.seed)
    fixed_z = gan.sample_latent(t.num_samples, device, generator=fixed)
    fixed_y = gan.sample_labels(t.num_samples, device, generator=fixed)

    # Distribute: the steps train `trainee` (G and D behind DDP, this rank's slice of the
    # global noise); `gan` holds the same unwrapped modules for checkpoints and samples
    trainee = distributed.for_training(gan, dist, cfg.seed, t.sync_batchnorm)

    def checkpoint(step: int) -> dict:
        return {
            "config": to_container(cfg), "data_info": data.info.to_dict(), "step": step,
            "G": gan.G.state_dict(), "D": gan.D.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "sampler": sampler.state_dict(), "rng": rng_state(), "fixed_z": fixed_z.cpu(),
            "noise_rng": trainee.noise.get_state(),
        }

    def export_samples(step: int, logger: RunLogger) -> None:
        gan.G.eval()
        with torch.no_grad():
            samples = gan.generate(fixed_z, fixed_y)
        gan.G.train()
        image = render(samples, data.info.kind, real_for_plots)
        save_png(image, run_dir / "samples" / f"step_{step:07d}.png")
        logger.log_image(step, image)

    # Train
    start, record = 0, {}
    batches = data.batches(sampler, device, t.num_workers)
    with RunLogger(run_dir, t.steps, start, enabled=dist.is_main) as logger:
        for step in range(start + 1, t.steps + 1):
            stats = {} if step % t.log_every == 0 or step == t.steps else None
            for i in range(t.n_critic):
                real, y = next(batches)
                discriminator_step(trainee, loss, opt_d, real, y,
                                   stats if i == t.n_critic - 1 else None)
            generator_step(trainee, loss, opt_g, t.batch_size // dist.world_size, device, stats)

            if stats is not None:
                stats = distributed.mean_over_ranks(dist, stats)  # global-batch values
                bad = [k for k, v in stats.items() if not np.isfinite(v)]
                if bad:
                    raise GanError(f"non-finite {', '.join(bad)} at step {step}; lower the "
                                   f"learning rate or try another loss")
                record = logger.log_scalars(step, stats)
            if dist.is_main and (step % t.sample_every == 0 or step == t.steps):
                export_samples(step, logger)
            if dist.is_main and (step % t.ckpt_every == 0 or step == t.steps):
                state = checkpoint(step)
                if step % t.ckpt_every == 0:
                    save_checkpoint(state, run_dir / "checkpoints" / f"step_{step:07d}.pt")
                save_checkpoint(state, run_dir / "checkpoints" / "last.pt")
            logger.advance(step)

    return float(record[t.metric])

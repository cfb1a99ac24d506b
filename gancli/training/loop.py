"""The training loop: one function, its phases marked, readable top to bottom."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import numpy as np
import torch

from gancli.config import Config, NanPolicy, to_container
from gancli.data import build_dataset
from gancli.errors import ConfigError, GanError
from gancli.images import render, save_png
from gancli.losses import build_loss
from gancli.models import build_model
from gancli.training import distributed
from gancli.training.augment import DiffAugment
from gancli.training.checkpoint import (
    load_checkpoint,
    rng_state,
    rotate_checkpoints,
    save_checkpoint,
    set_rng_state,
)
from gancli.training.ema import build_ema
from gancli.training.evaluation import build_evaluator, evaluation_keys
from gancli.training.logging import TAGS, RunLogger, log_histograms
from gancli.training.optimizers import build_optimizer
from gancli.training.resume import check_compatible, checkpoint_to_resume
from gancli.training.schedules import build_schedule
from gancli.training.signals import GracefulStop, StopRequested
from gancli.training.speed import autocast_dtype, compile_networks, enabled, use_channels_last
from gancli.training.step import NonFiniteLoss, StepOptions, TrainStep

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


def weights_finite(module: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in module.parameters())


def train(cfg: Config, run_dir: str | Path) -> float:
    """Train a GAN as `cfg` says, writing into run_dir; return the final `train.metric`
    (for an evaluation metric, its best value: the score of checkpoints/best.pt)."""
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    t = cfg.train
    logged = set(TAGS) | evaluation_keys(t)
    if t.metric not in logged:
        raise ConfigError(f"train.metric '{t.metric}' is not logged; choose one of: "
                          f"{', '.join(sorted(logged))} (evaluation metrics need "
                          f"train.eval_every > 0 and train.eval_metric)")
    skip_nonfinite = t.nan_policy is NanPolicy.skip

    # Initialize
    dist = distributed.setup(resolve_device(cfg.device.name.value))  # joins torchrun's ranks
    device = dist.device
    seed_everything(distributed.rank_seed(cfg.seed, dist.rank))
    if cfg.device.threads:
        torch.set_num_threads(cfg.device.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = t.cudnn_benchmark

    # Load data
    data = build_dataset(cfg.dataset)
    sampler = data.sampler(t.batch_size, cfg.seed, dist.rank, dist.world_size)
    real_for_plots = (data.real_samples(REAL_POINTS_IN_PLOTS, cfg.seed)
                      if data.info.kind == "points" else None)

    # Construct networks, loss and optimizers
    gan = build_model(cfg.model, data.info).to(device)
    channels_last = enabled(t.channels_last, device) and data.info.kind == "image"
    if t.augment and data.info.kind != "image":
        raise ConfigError(f"train.augment transforms images; dataset {cfg.dataset.name} has "
                          f"{data.info.kind}: set train.augment=[]")
    if channels_last:
        use_channels_last(gan)
    if (t.batch_size // dist.world_size) % gan.pack:  # D packs each rank's own batch
        raise ConfigError(f"train.batch_size={t.batch_size} over {dist.world_size} rank(s) "
                          f"must give batches that are a multiple of model.pack={gan.pack}")
    loss = build_loss(cfg.loss)
    opt_g = build_optimizer(cfg.optimizer, gan.G.parameters(), "g")
    opt_d = build_optimizer(cfg.optimizer, gan.D.parameters(), "d")
    sched_g = build_schedule(cfg.optimizer.schedule, opt_g, t.steps)
    sched_d = build_schedule(cfg.optimizer.schedule, opt_d, t.steps)
    ema = build_ema(gan.G, t.ema, t.batch_size)  # None when train.ema is off
    fixed = torch.Generator(device).manual_seed(cfg.seed)
    fixed_z = gan.sample_latent(t.num_samples, device, generator=fixed)
    fixed_y = gan.sample_labels(t.num_samples, device, generator=fixed)
    skipped = 0  # updates dropped by nan_policy=skip

    # Set up evaluation (train.eval_every; rank 0): real statistics are computed or loaded now
    evaluator = build_evaluator(cfg, data, device) if dist.is_main else None

    def checkpoint(step: int) -> dict:
        return {
            "config": to_container(cfg), "data_info": data.info.to_dict(), "step": step,
            "G": gan.G.state_dict(), "D": gan.D.state_dict(),
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "g_ema": ema.state_dict() if ema else None,
            "sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict(),
            "sampler": sampler.state_dict(), "rng": rng_state(), "fixed_z": fixed_z.cpu(),
            "skipped": skipped, "noise_rng": trainee.noise.get_state(),
            "train_step": train_step.state_dict(),
            "eval_best": evaluator.best if evaluator else None,
        }

    # Resume: everything that decides the rest of the trajectory comes from the checkpoint
    start, noise_state = 0, None
    resume_from = checkpoint_to_resume(cfg, run_dir)
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        check_compatible(cfg, state["config"], resume_from)
        gan.G.load_state_dict(state["G"])
        gan.D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        for sched, key in ((sched_g, "sched_g"), (sched_d, "sched_d")):
            if state.get(key):
                sched.load_state_dict(state[key])
        if ema is not None:
            ema.load_state_dict(state.get("g_ema") or state["G"])
        sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"])  # rank 0's; other ranks reseed from (seed, rank, step)
        if dist.rank:
            seed_everything(distributed.rank_seed(cfg.seed + state["step"], dist.rank))
        noise_state = state.get("noise_rng")  # the global latent stream: any world size
        fixed_z = state["fixed_z"].to(device)
        start, skipped = state["step"], state.get("skipped", 0)
        if evaluator is not None and state.get("eval_best") is not None:
            evaluator.best = state["eval_best"]
        if start >= t.steps:
            raise GanError(f"{resume_from} is already at step {start} >= train.steps={t.steps}; "
                           f"raise train.steps to train longer")

    # Distribute: the steps train `trainee` (G and D behind DDP, this rank's slice of the
    # global noise); `gan` holds the same unwrapped modules for checkpoints and samples
    if t.compile:
        compile_networks(gan)
    trainee = distributed.for_training(gan, dist, cfg.seed, t.sync_batchnorm, noise_state)
    train_step = TrainStep(trainee, loss, opt_g, opt_d, StepOptions(
        n_critic=t.n_critic, batch_size=t.batch_size // dist.world_size,
        max_grad_norm=cfg.optimizer.max_grad_norm, skip_nonfinite=skip_nonfinite,
        amp_dtype=autocast_dtype(t.precision, device), reuse_fake=t.reuse_fake,
        # DDP expects D's gradients in every backward; on the CPU, convolutions that need only
        # input gradients take a slow path (measured 15x slower), so it pays on CUDA alone
        freeze_d=device.type == "cuda" and not dist.distributed,
        channels_last=channels_last, augment=DiffAugment(t.augment)), device)
    if resume_from is not None and state.get("train_step"):
        train_step.load_state_dict(state["train_step"])

    def save(step: int, periodic: bool) -> Path:
        if not (weights_finite(gan.G) and weights_finite(gan.D)):
            net = "generator" if not weights_finite(gan.G) else "discriminator"
            raise GanError(f"non-finite {net} weights at step {step}; not saved, the last good "
                           f"checkpoint is {ckpt_dir / 'last.pt'}")
        if not dist.is_main:  # every rank holds the same weights; rank 0 alone writes
            return ckpt_dir / "last.pt"
        state = checkpoint(step)
        if periodic:
            save_checkpoint(state, ckpt_dir / f"step_{step:07d}.pt")
            rotate_checkpoints(ckpt_dir, t.keep_last)
        return save_checkpoint(state, ckpt_dir / "last.pt")

    def export_samples(step: int, logger: RunLogger) -> None:
        gan.G.eval()
        with torch.no_grad():
            samples = gan.generate(fixed_z, fixed_y, G=ema.G if ema else None)
        gan.G.train()
        image = render(samples, data.info.kind, real_for_plots)
        save_png(image, run_dir / "samples" / f"step_{step:07d}.png")
        logger.log_image(step, image)

    # Train
    record = {}
    batches = data.batches(sampler, device, t.num_workers)
    with (RunLogger(run_dir, t.steps, start, enabled=dist.is_main) as logger,
          GracefulStop() as stop):
        for step in range(start + 1, t.steps + 1):
            stats = {} if step % t.log_every == 0 or step == t.steps else None
            try:
                skipped += train_step(batches, step, stats)
                if t.histogram_every and step % t.histogram_every == 0:  # grads still here
                    log_histograms(logger, step, {"G": gan.G, "D": gan.D})
                if (stats is not None or step % t.sample_every == 0 or step % t.ckpt_every == 0
                        or evaluator is not None and evaluator.due(step)):
                    train_step.check_finite()  # before anything is logged, saved or evaluated
            except NonFiniteLoss as err:
                raise GanError(f"non-finite {err.net} loss ({err.value}) at step "
                               f"{err.step or step}; stopped. The last good checkpoint is "
                               f"{ckpt_dir / 'last.pt'}. Lower the learning rate, or set "
                               f"train.nan_policy=skip") from None
            if stats is not None:
                stats.update(lr_g=sched_g.get_last_lr()[0], lr_d=sched_d.get_last_lr()[0])
            sched_g.step()
            sched_d.step()
            if ema is not None:
                ema.update(gan.G, step)

            if stats is not None:
                stats = distributed.mean_over_ranks(dist, stats)  # global-batch values
                record = logger.log_scalars(step, {**stats, "skipped_updates": skipped})
            if dist.is_main and (step % t.sample_every == 0 or step == t.steps):
                export_samples(step, logger)
                report = gan.report(data)  # a family's own measures, e.g. SGAN's test accuracy
                if report:
                    logger.log_eval(step, report)
            if evaluator is not None and evaluator.due(step):  # before saving: last.pt
                if evaluator.run(step, gan, logger, ema.G if ema else None):  # then holds
                    save_checkpoint(checkpoint(step), ckpt_dir / "best.pt")  # the new best
            if step % t.ckpt_every == 0 or step == t.steps:
                save(step, periodic=step % t.ckpt_every == 0)
            logger.advance(step)
            if distributed.any_rank(dist, stop.signum is not None):  # all stop at one step
                raise StopRequested(stop.signum or signal.SIGTERM, step,
                                    save(step, periodic=False))

    if t.metric in evaluation_keys(t):  # only rank 0 evaluates
        return evaluator.best if evaluator is not None else float("nan")
    return float(record[t.metric])

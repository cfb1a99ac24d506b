"""The training loop: one function, its phases marked, readable top to bottom.

It knows no model family: the family (gancli/models/family.py) owns its networks, parameter
groups, update rule and samples; the loop owns device, seeding, data, resume, signals,
schedules, EMA, logging, sample export, evaluation and checkpoints.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import numpy as np
import torch

from gancli.config import Augment, Config, NanPolicy
from gancli.data import build_dataset
from gancli.devices import resolve_device, resolve_threads
from gancli.errors import ConfigError, GanError
from gancli.images import image_grid, render, save_png
from gancli.losses import build_loss
from gancli.models import build_model
from gancli.training import distributed, runlock
from gancli.training.augment import AdaptiveP, DiffAugment
from gancli.training.budget import TimeBudget
from gancli.training.checkpoint import (
    describe_last_good,
    link_or_copy,
    remove_stale_temporaries,
    rng_state,
    rotate_checkpoints,
    save_checkpoint,
    set_rng_state,
)
from gancli.training.ema import build_ema
from gancli.training.evaluation import build_evaluator, evaluation_keys
from gancli.training.guards import SkipGuard, check_batch_for_batchnorm
from gancli.training.logging import RunLogger, log_histograms
from gancli.training.optimizers import build_optimizer
from gancli.training.report import run_end, run_start, write_reals
from gancli.training.resume import (
    RunFinished,
    check_compatible,
    check_same_data,
    checkpoint_to_resume,
    learning_rate_changed,
    load_for_resume,
    record_nan,
    set_learning_rate,
)
from gancli.training.schedules import build_schedule
from gancli.training.signals import GracefulStop, StopRequested
from gancli.training.snapshot import restore_model, snapshot
from gancli.training.speed import (
    autocast_dtype,
    check_compilable,
    compile_networks,
    enabled,
    use_channels_last,
)
from gancli.training.step import NonFiniteLoss, StepContext, StepOptions

REAL_POINTS_IN_PLOTS = 2000


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def weights_finite(module: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in module.parameters())


@runlock.released_after  # the run directory's lock, taken below, is let go however it ends
def train(cfg: Config, run_dir: str | Path) -> float:
    """Train the model family `cfg` names, writing into run_dir; return the final
    `train.metric` (for an evaluation metric, its best value: the score of
    checkpoints/best.pt)."""
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    t = cfg.train
    budget = TimeBudget(t.max_seconds, t.clock)  # this process's, from here
    skip_nonfinite = t.nan_policy is NanPolicy.skip
    check_compilable(t.compile, cfg.loss)

    # Initialize
    dist = distributed.setup(resolve_device(cfg.device.name.value))  # joins torchrun's ranks
    device = dist.device
    if dist.is_main:  # one writer per run directory; then what a killed one left is stale
        runlock.acquire(run_dir)
        remove_stale_temporaries(ckpt_dir)
        remove_stale_temporaries(run_dir)
    seed_everything(distributed.rank_seed(cfg.seed, dist.rank))
    torch.set_num_threads(resolve_threads(cfg.device.threads))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = t.cudnn_benchmark

    # Load data
    data = build_dataset(cfg.dataset)
    sampler = data.sampler(t.batch_size, cfg.seed, dist.rank, dist.world_size)
    real_for_plots = (data.real_samples(REAL_POINTS_IN_PLOTS, cfg.seed)
                      if data.info.kind == "points" else None)

    # Construct the model family, its loss and one optimizer and schedule per parameter group
    family = build_model(cfg.model, data.info).to(device)
    family.bind(data, device)  # what sampling needs from the data (a translator's inputs)
    metric = t.metric or (t.eval_metric.value if t.eval_every else family.default_metric)
    logged = family.logged_terms() | {"steps_per_s", "skipped_updates"} | evaluation_keys(t)
    if t.augment_p == "ada":
        logged |= {"augment_p", "ada_rt"}
    if metric not in logged:
        raise ConfigError(f"train.metric '{metric}' is not logged by model {cfg.model.name}; "
                          f"choose one of: {', '.join(sorted(logged))} (evaluation metrics "
                          f"need train.eval_every > 0 and train.eval_metric)")
    channels_last = enabled(t.channels_last, device) and data.info.kind == "image"
    if t.augment and data.info.kind != "image":
        raise ConfigError(f"train.augment transforms images; dataset {cfg.dataset.name} has "
                          f"{data.info.kind}: set train.augment=[]")
    if Augment.rotate90 in t.augment and data.info.shape[1] != data.info.shape[2]:
        raise ConfigError(f"train.augment: rotate90 needs square images; dataset "
                          f"{cfg.dataset.name} has {data.info.shape[1]}x{data.info.shape[2]}")
    if channels_last:
        use_channels_last(family)
    if (t.batch_size // dist.world_size) % family.batch_multiple:  # e.g. D packs each rank's
        raise ConfigError(f"train.batch_size={t.batch_size} over {dist.world_size} rank(s) "
                          f"must give batches that are a multiple of "
                          f"{family.batch_multiple_reason}")
    check_batch_for_batchnorm(list(family.networks().values()),
                              t.batch_size // dist.world_size // family.batch_multiple)
    loss = build_loss(cfg.loss)
    optimizers = {name: build_optimizer(cfg.optimizer, params, name)
                  for name, params in family.param_groups().items()}
    schedules = {name: build_schedule(cfg.optimizer.schedule, opt, t.steps,
                                      cfg.optimizer.decay_start)
                 for name, opt in optimizers.items()}
    ema = build_ema(family.sampler, t.ema, t.batch_size)  # None when train.ema is off
    fixed = torch.Generator(device).manual_seed(cfg.seed)
    fixed_z = family.sample_latent(t.num_samples, device, generator=fixed)
    fixed_y = family.sample_labels(t.num_samples, device, generator=fixed)
    skipped = 0  # updates dropped by nan_policy=skip
    skip_guard = SkipGuard(t.max_skipped)

    # Set up evaluation (train.eval_every; rank 0): real statistics are computed or loaded now
    evaluator = build_evaluator(cfg, data, device) if dist.is_main else None

    def checkpoint(step: int) -> dict:
        return snapshot(cfg=cfg, info=data.info, step=step, family=family,
                        optimizers=optimizers, schedules=schedules, ema=ema, sampler=sampler,
                        rng=rng_state(), fixed_z=fixed_z, skipped=skipped,
                        noise_rng=trainee.noise.get_state(), step_context=step_context,
                        eval_best=evaluator.best if evaluator else None)

    # Resume: everything that decides the rest of the trajectory comes from the checkpoint
    start, noise_state = 0, None
    resume_from = checkpoint_to_resume(cfg, run_dir)
    if resume_from is not None:
        state = load_for_resume(resume_from)
        check_compatible(cfg, state["config"], resume_from, state["step"])
        check_same_data(data.info, state, resume_from, cfg.dataset)
        restore_model(family, state, resume_from)
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in schedules.items():
            if state["schedules"].get(name):
                sched.load_state_dict(state["schedules"][name])
        if learning_rate_changed(cfg, state["config"]):  # after a NaN: the new rate applies
            for name, opt in optimizers.items():
                set_learning_rate(opt, schedules[name], cfg.optimizer.lr_for(name))
        if ema is not None:
            ema.load_state_dict(state.get("ema") or family.sampler.state_dict())
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
            raise RunFinished(f"{resume_from} is already at step {start}: the run is finished "
                              f"(train.steps={t.steps}); pass train.steps=<more> to extend it")

    # Distribute: the steps train `trainee` (its networks behind DDP, this rank's slice of the
    # global noise); `family` holds the same unwrapped modules for checkpoints and samples
    if t.compile:
        compile_networks(family)
    trainee = distributed.for_training(family, dist, cfg.seed, t.sync_batchnorm, noise_state)
    augment = DiffAugment(t.augment, 1.0 if t.augment_p == "ada" else float(t.augment_p))
    adaptive = (AdaptiveP(augment, t.ada_target, t.ada_interval, t.ada_kimg, t.batch_size)
                if t.augment_p == "ada" else None)
    step_context = StepContext(loss, optimizers, StepOptions(
        n_critic=t.n_critic, batch_size=t.batch_size // dist.world_size,
        max_grad_norm=cfg.optimizer.max_grad_norm, skip_nonfinite=skip_nonfinite,
        amp_dtype=autocast_dtype(t.precision, device), reuse_fake=t.reuse_fake,
        # DDP expects D's gradients in every backward; on the CPU, convolutions that need only
        # input gradients take a slow path (measured 15x slower), so it pays on CUDA alone
        freeze_d=device.type == "cuda" and not dist.distributed,
        channels_last=channels_last, augment=augment), device,
        family.group_names, adaptive)
    if resume_from is not None and state.get("update"):
        step_context.load_state_dict(state["update"])

    def save(step: int, periodic: bool) -> Path:
        for name, network in family.networks().items():
            if not weights_finite(network):
                raise GanError(f"non-finite weights in {name} at step {step}; not saved, "
                               f"{describe_last_good(ckpt_dir)}")
        if not dist.is_main:  # every rank holds the same weights; rank 0 alone writes
            return ckpt_dir / "last.pt"
        state = checkpoint(step)
        if periodic:  # last.pt: a hard link to the step file, not a second copy
            saved = save_checkpoint(state, ckpt_dir / f"step_{step:07d}.pt")
            rotate_checkpoints(ckpt_dir, t.keep_last)
            return link_or_copy(saved, ckpt_dir / "last.pt")
        return save_checkpoint(state, ckpt_dir / "last.pt")

    def export_samples(step: int, logger: RunLogger) -> None:
        was_training = family.training
        family.eval()
        # draws made while sampling (a generator's noise inputs) leave training's random
        # stream as it was: a run that exports at a step continues as one that does not
        cuda = [device] if device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda):
            extras = family.on_export(data, device)  # e.g. refits a prior, reconstructions
            samples = family.generate(fixed_z, fixed_y, G=ema.G if ema else None)
        family.train(was_training)
        image = render(samples, data.info.kind, real_for_plots)
        save_png(image, run_dir / "samples" / f"step_{step:07d}.png")
        logger.log_image(step, image)
        for name, grid in extras.items():
            image = image_grid(grid.float().cpu(), nrow=grid.shape[0] // 2)
            save_png(image, run_dir / "samples" / f"{name}_step_{step:07d}.png")
            logger.log_image(step, image, tag=name)

    if dist.is_main:  # what runs where, how to resume it; the training images beside samples
        run_start(cfg, run_dir, device, family, start, resume_from)
        write_reals(data, run_dir, t.num_samples, cfg.seed)

    # Train
    record = {}
    batches = data.batches(sampler, device, t.num_workers)
    with (RunLogger(run_dir, t.steps, start, enabled=dist.is_main) as logger,
          GracefulStop() as stop):
        for step in range(start + 1, t.steps + 1):
            # past train.max_seconds, this step is the last (all ranks agree on it)
            out_of_time = budget.limited and distributed.any_rank(dist, budget.exhausted())
            last = step == t.steps or out_of_time
            stats = {} if step % t.log_every == 0 or last else None
            try:
                attempted = step_context.updates
                dropped = trainee.train_step(step_context, batches, step, stats)
                step_context.end_step(step, stats)
                skipped += dropped
                if skip_nonfinite:
                    skip_guard(step, dropped, step_context.updates - attempted, t.steps,
                               lambda: describe_last_good(ckpt_dir))
                if t.histogram_every and step % t.histogram_every == 0:  # grads still here
                    log_histograms(logger, step, family.networks())
                if (stats is not None or step % t.sample_every == 0 or step % t.ckpt_every == 0
                        or evaluator is not None and evaluator.due(step)):
                    step_context.check_finite()  # before anything is logged, saved or evaluated
            except NonFiniteLoss as err:
                if dist.is_main:
                    record_nan(run_dir, err.step or step, err.net)
                raise GanError(f"non-finite {err.net} loss ({err.value}) at step "
                               f"{err.step or step}; stopped; {describe_last_good(ckpt_dir)}. "
                               f"Lower the learning rate (resume with optimizer.lr=...), or "
                               f"set train.nan_policy=skip") from None
            if stats is not None:
                stats.update({f"lr_{name}": sched.get_last_lr()[0]
                              for name, sched in schedules.items()})
            for sched in schedules.values():
                sched.step()
            if ema is not None:
                ema.update(family.sampler, step)

            if stats is not None:
                stats = distributed.mean_over_ranks(dist, stats)  # global-batch values
                record = logger.log_scalars(step, {**stats, "skipped_updates": skipped})
            if dist.is_main and (step % t.sample_every == 0 or last):
                export_samples(step, logger)
                report = family.report(data)  # a family's own measures (SGAN's test accuracy)
                if report:
                    logger.log_eval(step, report)
            if evaluator is not None and (last or evaluator.due(step)):  # before saving:
                if evaluator.run(step, family, logger, ema.G if ema else None):  # last.pt
                    save_checkpoint(checkpoint(step), ckpt_dir / "best.pt")  # then holds the best
            if step % t.ckpt_every == 0 or last:
                save(step, periodic=step % t.ckpt_every == 0)
            logger.advance(step)
            if out_of_time:
                logger.note(budget.describe(step))
                break
            if distributed.any_rank(dist, stop.signum is not None):  # all stop at one step
                raise StopRequested(stop.signum or signal.SIGTERM, step,
                                    save(step, periodic=False))

    if metric in evaluation_keys(t):  # only rank 0 evaluates
        value = evaluator.best if evaluator is not None else float("nan")
    else:
        value = float(record[metric])
    if dist.is_main:
        run_end(run_dir, record, metric, value)
    return value

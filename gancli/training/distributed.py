"""Data-parallel training over several processes, as torchrun starts them.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE (and MASTER_ADDR/PORT) in each process; from
them this module joins the process group, gives each rank its device and seed, and puts each
network of the model family behind DistributedDataParallel. One process (plain `gan train`)
takes the same path with world_size 1: no process group, nothing wrapped.

How N ranks reproduce one process trained on the same global batch:
- data: the sampler hands each rank its slice of every global batch (gancli/data/base.py);
- noise: every rank draws each of the family's random batches (latents, labels, its own
  draws) for the *global* batch from one generator seeded alike on all ranks and keeps its
  slice, so the N slices are exactly the batch one process would draw;
- gradients: DDP averages the per-rank gradients of per-rank mean losses, which equals the
  gradient of the global mean (equal slice sizes);
- BatchNorm is the exception: each rank normalises with its own slice's statistics unless
  `train.sync_batchnorm=true` (CUDA only) makes them global.
Everything else random (dropout, augmentation, loader workers) draws from per-rank seeds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gancli.errors import ConfigError, GanError
from gancli.models.family import Family

NOISE_SEED_OFFSET = 0x6E6F697365  # "noise": keeps the latent stream apart from other seeds
RANK_SEED_STRIDE = 1_000_003
TIMEOUT = timedelta(minutes=30)  # a rank waiting longer than this for the others gives up


@dataclass(frozen=True)
class Context:
    """Where this process stands among the ranks of one training run."""

    rank: int = 0
    local_rank: int = 0  # index among the ranks on this machine: picks the GPU
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, samples, logs and progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _adopt_submitit_ranks() -> None:
    """In a job that submitit started with several tasks (hydra/launcher=slurm or
    submitit_local with tasks_per_node > 1), Slurm or submitit started the ranks, not torchrun:
    export their ranks and rendezvous address the way torchrun would."""
    if "RANK" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    from submitit import JobEnvironment
    from submitit.helpers import TorchDistributedEnvironment

    if JobEnvironment().num_tasks > 1:
        # every task sees all the node's GPUs and picks GPU LOCAL_RANK, as under torchrun
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def launched() -> bool:
    """True in a process started as one of several ranks (torchrun's environment, or a
    multi-task submitit job's)."""
    _adopt_submitit_ranks()
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """Rank 0, or a single process; usable before and after the process group exists."""
    return dist.get_rank() == 0 if dist.is_available() and dist.is_initialized() else \
        env_rank() == 0


def backend() -> str:
    """Collectives run where their tensors live: NCCL for CUDA tensors, gloo for CPU ones."""
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "cpu:gloo,cuda:nccl"
    return "gloo"


def init_process_group() -> None:
    """Join the other ranks (once); nothing to do in a single process."""
    if not launched() or dist.is_initialized():
        return
    if not dist.is_available():
        raise GanError("this PyTorch build has no torch.distributed; run a single process")
    dist.init_process_group(backend(), timeout=TIMEOUT)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def setup(device: torch.device) -> Context:
    """The Context for this process, joining the process group under torchrun.

    `device` is what the config resolved to; on CUDA each rank takes GPU LOCAL_RANK."""
    init_process_group()
    if not dist.is_initialized():
        return Context(device=device)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise GanError(f"rank {rank} wants GPU {local_rank} but this machine has "
                           f"{torch.cuda.device_count()}; lower torchrun --nproc_per_node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return Context(rank, local_rank, world_size, device)


def rank_seed(seed: int, rank: int) -> int:
    """Rank 0 keeps `seed`, so a single process and rank 0 of many start alike."""
    return seed + RANK_SEED_STRIDE * rank


def broadcast_object(obj):
    """Rank 0's `obj` on every rank (any picklable value); `obj` itself in a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(ctx: Context, values: dict[str, float]) -> dict[str, float]:
    """Per-rank means over equal slices -> the means over the global batch, on every rank."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    summed = torch.tensor([values[k] for k in keys], dtype=torch.float64)  # CPU: gloo
    dist.all_reduce(summed)
    return {k: v / ctx.world_size for k, v in zip(keys, summed.tolist(), strict=True)}


def any_rank(ctx: Context, flag: bool) -> bool:
    """True on every rank when `flag` is true on one: ranks must leave the loop together."""
    if not ctx.distributed:
        return flag
    value = torch.tensor([float(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _reduce(values: torch.Tensor, op) -> torch.Tensor:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    values = values.clone()
    dist.all_reduce(values, op=op)
    return values


def max_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum over ranks (the tensor itself in one process)."""
    return _reduce(values, dist.ReduceOp.MAX)


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks (the tensor itself in one process)."""
    return _reduce(values, dist.ReduceOp.SUM)


def finite_on_all_ranks(loss: torch.Tensor) -> bool:
    """Whether `loss` is finite on every rank, so that all ranks apply or skip an update alike."""
    finite = torch.isfinite(loss.detach()).all()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return bool(finite)
    flag = finite.to(torch.float32).reshape(1)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def _wrap(module: nn.Module, ctx: Context, sync_batchnorm: bool, unused: bool) -> nn.Module:
    if sync_batchnorm:
        # Replaces BatchNorm layers inside `module` in place; parameters stay the same
        # objects (optimizers built earlier still hold them) and state-dict keys are unchanged.
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # DDP copies rank 0's parameters and buffers to every rank here, and afterwards broadcasts
    # rank 0's buffers (BatchNorm running statistics) before each forward pass.
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=unused)


class _GlobalNoise:
    """Placed before a model family's class: every random draw the family makes (latents,
    labels, its own draws through randn/rand/randint) is drawn for the global batch from a
    generator that every rank seeds alike, and each rank keeps its slice."""

    noise: torch.Generator
    _rank: int
    _world_size: int

    def _slice(self, x: torch.Tensor, n: int) -> torch.Tensor:
        return x[self._rank * n:(self._rank + 1) * n]

    def randn(self, n, *shape, device, generator=None):
        x = super().randn(n * self._world_size, *shape, device=device,
                          generator=generator or self.noise)
        return self._slice(x, n)

    def rand(self, n, *shape, device, generator=None):
        x = super().rand(n * self._world_size, *shape, device=device,
                         generator=generator or self.noise)
        return self._slice(x, n)

    def randint(self, high, n, *shape, device, generator=None):
        x = super().randint(high, n * self._world_size, *shape, device=device,
                            generator=generator or self.noise)
        return self._slice(x, n)


def for_training(family: Family, ctx: Context, seed: int, sync_batchnorm: bool = False,
                 noise_state: torch.Tensor | None = None) -> Family:
    """The family as the training steps see it.

    It is an instance of the family's own class (so every method it overrides still applies)
    sharing all modules with `family`, except that each of its networks is a DDP wrapper when
    there are several ranks, and random draws come from the shared stream (see _GlobalNoise),
    which `noise_state` (a checkpoint's "noise_rng") continues. Keep using `family` itself for
    checkpoints, sample images and EMA: its state dicts are unwrapped.
    """
    if sync_batchnorm and ctx.distributed and ctx.device.type != "cuda":
        raise ConfigError("train.sync_batchnorm=true needs CUDA devices: PyTorch's "
                          "SyncBatchNorm does not run on the CPU")
    cls = type(family)
    view_class = type(f"Training{cls.__name__}", (_GlobalNoise, cls), {})
    view = view_class.__new__(view_class)
    view.__dict__.update(family.__dict__)
    modules = dict(family._modules)  # a new dict: swapping networks here leaves `family` as is
    if ctx.distributed:
        for name, network in family.networks().items():
            modules[name] = _wrap(network, ctx, sync_batchnorm, family.unused_parameters)
    view.__dict__["_modules"] = modules
    noise = torch.Generator(ctx.device).manual_seed(seed + NOISE_SEED_OFFSET)
    if noise_state is not None:
        noise.set_state(noise_state)
    view.__dict__["noise"] = noise
    view.__dict__["_rank"], view.__dict__["_world_size"] = ctx.rank, ctx.world_size
    return view

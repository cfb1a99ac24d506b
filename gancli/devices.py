"""Which torch device a `device=` setting means."""

from __future__ import annotations

import os

import torch

from gancli.errors import GanError


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask: Slurm's and taskset's limits)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_threads(setting: str | int | None) -> int:
    """device.threads -> torch's thread count: a number as given; auto: OMP_NUM_THREADS when
    the user set it, else every available core.

    auto relies on OpenMP's passive wait policy (OMP_WAIT_POLICY=PASSIVE, set by `gan` before
    torch loads): with the default active policy, threads spin while they wait, and on a CPU
    shared with other work a 100-step DCGAN run took 292 s with 2 threads against 39 s with
    2 passive threads (see README, Set up)."""
    if setting is None or str(setting) == "auto":
        given = os.environ.get("OMP_NUM_THREADS", "")
        return int(given) if given.isdigit() and int(given) > 0 else available_cores()
    return int(setting)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GanError("device=cuda but no CUDA device is available; use device=auto or cpu")
    return torch.device(name)

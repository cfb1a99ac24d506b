"""Learning-rate schedules, stepped once per generator update for both G's and D's optimizer."""

from __future__ import annotations

from enum import Enum

import torch
from torch.optim.lr_scheduler import LambdaLR


class Schedule(Enum):
    constant = "constant"
    # constant until decay_start, then linear to 0 at the last step (SNGAN, Mimicry; CycleGAN
    # with decay_start 0.5)
    linear = "linear"


def lr_factor(schedule: Schedule | str, step: int, total_steps: int,
              decay_start: float = 0.0) -> float:
    """The multiplier of the base learning rate for the update after `step` updates; a
    linear schedule holds 1 for the first `decay_start` share of the steps."""
    if Schedule(schedule) is Schedule.linear:
        start = int(decay_start * total_steps)
        return min(1.0, max(0.0, 1.0 - (step - start) / (total_steps - start)))
    return 1.0


def build_schedule(schedule: Schedule | str, opt: torch.optim.Optimizer,
                   total_steps: int, decay_start: float = 0.0) -> LambdaLR:
    schedule = Schedule(schedule)
    return LambdaLR(opt, lambda step: lr_factor(schedule, step, total_steps, decay_start))

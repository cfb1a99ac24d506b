"""Learning-rate schedules, stepped once per generator update for both G's and D's optimizer."""

from __future__ import annotations

from enum import Enum

import torch
from torch.optim.lr_scheduler import LambdaLR


class Schedule(Enum):
    constant = "constant"
    linear = "linear"  # decays linearly from the set lr to 0 at the last step (SNGAN, Mimicry)


def lr_factor(schedule: Schedule | str, step: int, total_steps: int) -> float:
    """The multiplier of the base learning rate for the update after `step` updates."""
    if Schedule(schedule) is Schedule.linear:
        return max(0.0, 1.0 - step / total_steps)
    return 1.0


def build_schedule(schedule: Schedule | str, opt: torch.optim.Optimizer,
                   total_steps: int) -> LambdaLR:
    schedule = Schedule(schedule)
    return LambdaLR(opt, lambda step: lr_factor(schedule, step, total_steps))

"""Checks the training loop runs so that a run fails early, in one line, instead of late."""

from __future__ import annotations

from collections import deque

import torch

from gancli.errors import ConfigError, GanError

SKIP_WINDOW = 100  # generator steps over which train.max_skipped is judged


class SkipGuard:
    """train.nan_policy=skip drops non-finite updates; a run that drops more than
    `max_skipped` (a fraction) of the updates of its last SKIP_WINDOW steps is diverging,
    not hitting the odd bad batch, and stops. Judged when the window is full, and at the
    last step over the steps run so far."""

    def __init__(self, max_skipped: float, window: int = SKIP_WINDOW):
        self.max_skipped = max_skipped
        self.recent: deque[tuple[int, int]] = deque(maxlen=window)  # (dropped, attempted)

    def __call__(self, step: int, skipped: int, attempted: int, last_step: int, where) -> None:
        self.recent.append((skipped, attempted))
        full = len(self.recent) == self.recent.maxlen
        if not (full or step == last_step):
            return
        dropped, updates = (sum(column) for column in zip(*self.recent, strict=True))
        if dropped > self.max_skipped * updates:
            raise GanError(
                f"train.nan_policy=skip dropped {dropped} of the last {updates} updates at "
                f"step {step}, more than train.max_skipped={self.max_skipped:g} of them: the "
                f"run is diverging; {where()}. Lower the learning rate and resume from it")


def check_batch_for_batchnorm(modules: list[torch.nn.Module], per_rank_batch: int) -> None:
    """BatchNorm in training needs more than one value per channel: refuse a batch of one
    before the first step fails with a traceback."""
    if per_rank_batch > 1:
        return
    for module in modules:
        for name, layer in module.named_modules():
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                raise ConfigError(
                    f"train.batch_size gives {per_rank_batch} item per batch (per rank, per "
                    f"pack), but {type(module).__name__} has BatchNorm ({name}), which needs "
                    f"at least 2: raise train.batch_size or turn BatchNorm off")

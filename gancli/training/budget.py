"""`train.max_seconds`: a time budget for one training process, on the wall clock or on this
process's CPU time (what a fair comparison needs on a shared machine, where wall time depends
on the neighbours). It counts this process only: a resumed run gets a fresh budget."""

from __future__ import annotations

import time

from gancli.config import Clock

CLOCKS = {Clock.wall: time.perf_counter, Clock.cpu: time.process_time}


class TimeBudget:
    def __init__(self, max_seconds: float | None, clock: Clock):
        self.max_seconds, self.clock = max_seconds, clock
        self._now = CLOCKS[clock]
        self._start = self._now()

    @property
    def limited(self) -> bool:
        return self.max_seconds is not None

    def used(self) -> float:
        return self._now() - self._start

    def exhausted(self) -> bool:
        return self.limited and self.used() >= self.max_seconds

    def describe(self, step: int) -> str:
        return (f"time budget spent: train.max_seconds={self.max_seconds:g} on the "
                f"{self.clock.value} clock, {self.used():.1f} s used at step {step}; the "
                f"checkpoint and samples of step {step} are saved")

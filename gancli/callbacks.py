"""Hydra callbacks (conf/config.yaml, `hydra.callbacks`): after each run its HParams entry for
TensorBoard, after each sweep the summary table. They run on rank 0 only under torchrun."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gancli.errors import GanError
from gancli.training.distributed import is_main_process


class SweepSummary(Callback):
    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from gancli.summary import write_hparams

        if job_return.status == JobStatus.COMPLETED and is_main_process():
            hydra = config.hydra
            write_hparams(hydra.runtime.output_dir, list(hydra.overrides.task))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from gancli.summary import summarize

        if not is_main_process():
            return
        try:
            summarize(Path(str(config.hydra.sweep.dir)))
        except GanError as err:  # the jobs' own results stand; say why there is no table
            print(f"no sweep summary: {err}", file=sys.stderr)

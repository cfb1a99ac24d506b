"""What a run reports: TensorBoard events, metrics.jsonl, and a rich progress bar."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# metrics.jsonl key -> TensorBoard tag
TAGS = {
    "d_loss": "loss/d",
    "g_loss": "loss/g",
    "d_real": "D/real",  # mean raw D score on real data, D(x)
    "d_fake": "D/fake",  # mean raw D score on generated data, D(G(z))
    "grad_norm_d": "grad_norm/d",
    "grad_norm_g": "grad_norm/g",
    "d_penalty": "loss/d_penalty",
    "steps_per_s": "speed/steps_per_s",
    "skipped_updates": "train/skipped_updates",  # dropped by train.nan_policy=skip
}


class RunLogger:
    """`enabled=False` (ranks other than 0) writes and shows nothing, but still returns records."""

    def __init__(self, run_dir: Path, total_steps: int, start_step: int = 0,
                 console: Console | None = None, enabled: bool = True):
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir, self.enabled = run_dir, enabled
        self._last_time, self._last_step = time.perf_counter(), start_step
        if not enabled:
            return
        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step or None)
        self.metrics_path = run_dir / "metrics.jsonl"
        if start_step:
            self._truncate_metrics(start_step)
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(), console=self.console, transient=False,
        )
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step,
                                           status="", rate="")

    def _truncate_metrics(self, step: int) -> None:
        """A resumed run drops records written after its checkpoint (TensorBoard does the same
        through purge_step), so each step appears once."""
        if self.metrics_path.exists():
            lines = self.metrics_path.read_text().splitlines()
            kept = [line for line in lines if line and json.loads(line)["step"] <= step]
            self.metrics_path.write_text("".join(line + "\n" for line in kept))

    def __enter__(self):
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()
            self.writer.close()

    def log_scalars(self, step: int, values: dict[str, float]) -> dict:
        now = time.perf_counter()
        record = {"step": step, **values,
                  "steps_per_s": (step - self._last_step) / max(now - self._last_time, 1e-9)}
        self._last_time, self._last_step = now, step
        if not self.enabled:
            return record
        for key, value in record.items():
            if key != "step":
                self.writer.add_scalar(TAGS.get(key, key), value, step)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        status = " ".join(f"{k}={record[k]:.3f}" for k in ("d_loss", "g_loss") if k in record)
        rate = f"{record['steps_per_s']:.1f} step/s"
        self.progress.update(self.task, status=status, rate=rate)
        if not self.console.is_terminal:  # logs and batch jobs get a plain line instead of a bar
            self.console.print(f"step {step}/{self.progress.tasks[0].total} {status} {rate}",
                               highlight=False)
        return record

    def advance(self, step: int) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=step)

    def log_image(self, step: int, image: torch.Tensor) -> None:
        if self.enabled:
            self.writer.add_image("samples", image, step)

    def log_eval(self, step: int, values: dict[str, float]) -> None:
        """Evaluation results: TensorBoard tags under eval/, and a metrics.jsonl line."""
        if not self.enabled:
            return
        for key, value in values.items():
            self.writer.add_scalar(f"eval/{key}", value, step)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")


def log_histograms(target, step: int, networks: dict[str, torch.nn.Module]) -> None:
    """Per-layer weight and gradient histograms of each network (`weights/<net>/<param>`,
    `grads/<net>/<param>`) and each parameter's gradient norm as a scalar
    (`grad_norm_layer/<net>/<param>`). `target` is a RunLogger (nothing is written when it is
    disabled, on ranks other than 0) or a SummaryWriter. The gradients are what each
    parameter's .grad holds when called: after a training step, those of the last backward
    pass that reached it. Parameters without a gradient get a weight histogram only."""
    if not getattr(target, "enabled", True):
        return
    writer = getattr(target, "writer", target)
    for net, module in networks.items():
        for name, param in module.named_parameters():
            tag = f"{net}/{name.replace('.', '/')}"
            writer.add_histogram(f"weights/{tag}", param.detach().float().cpu(), step)
            if param.grad is not None:
                grad = param.grad.detach().float()
                writer.add_histogram(f"grads/{tag}", grad.cpu(), step)
                writer.add_scalar(f"grad_norm_layer/{tag}", grad.norm().item(), step)

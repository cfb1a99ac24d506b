"""What a run reports: TensorBoard events, metrics.jsonl, and a rich progress bar."""

from __future__ import annotations

import json
import logging
import os
import sys
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
    "g_penalty": "loss/g_penalty",  # loss.ortho's term
    "steps_per_s": "speed/steps_per_s",
    "skipped_updates": "train/skipped_updates",  # dropped by train.nan_policy=skip
}


STATUS_KEYS = ("d_loss", "g_loss", "loss", "kl")  # shown on the progress line when logged


def append_record(path: Path, record: dict) -> None:
    """One JSON line, written by a single write() on a file opened O_APPEND: a reader or a
    kill sees the whole line or none of it (short of a torn write at the disk's edge, which
    read_records drops)."""
    data = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(28, f"short write to {path} ({written} of {len(data)} bytes)")
    finally:
        os.close(fd)


def read_records(path: Path, warn=None) -> list[dict]:
    """The records of a metrics.jsonl file; a line that is not a JSON object (a torn last
    line after a kill, a damaged one) is dropped with a warning naming it."""
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    records = []
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return records
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("no step")
        except ValueError:
            torn = number == len(lines) and not text.endswith("\n")
            warn(f"{path}: dropped {'a torn last line' if torn else f'line {number}'} "
                 f"that is not a complete record ({line[:60]!r})")
            continue
        records.append(record)
    return records


def write_records(path: Path, records: list[dict]) -> None:
    """Replace `path` with `records`: a new file, fsynced, renamed over the old one, so a
    kill at any moment leaves one of the two whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
            kept = [r for r in read_records(self.metrics_path) if r["step"] <= step]
            write_records(self.metrics_path, kept)

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
        append_record(self.metrics_path, record)
        status = " ".join(f"{k}={record[k]:.3f}" for k in STATUS_KEYS if k in record)
        rate = f"{record['steps_per_s']:.1f} step/s"
        self.progress.update(self.task, status=status, rate=rate)
        line = f"step {step}/{self.progress.tasks[0].total} {status} {rate}"
        logging.getLogger("gancli").info(line)  # train.log
        if not self.console.is_terminal:  # logs and batch jobs get a plain line instead of a bar
            self.console.print(line, highlight=False)
        return record

    def note(self, line: str) -> None:
        """A line for train.log and the console: why the run ended, say."""
        if self.enabled:
            logging.getLogger("gancli").info(line)
            self.console.print(line, highlight=False)

    def advance(self, step: int) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=step)

    def log_image(self, step: int, image: torch.Tensor, tag: str = "samples") -> None:
        if self.enabled:
            self.writer.add_image(tag, image, step)

    def log_eval(self, step: int, values: dict[str, float]) -> None:
        """Evaluation results: TensorBoard tags under eval/, and a metrics.jsonl line."""
        if not self.enabled:
            return
        for key, value in values.items():
            self.writer.add_scalar(f"eval/{key}", value, step)
        append_record(self.metrics_path, {"step": step, **values})


def log_histograms(target, step: int, networks: dict[str, torch.nn.Module]) -> None:
    """Per-layer weight and gradient histograms of each network (`weights/<net>/<param>`,
    `grads/<net>/<param>`) and each parameter's gradient norm as a scalar
    (`grad_norm_layer/<net>/<param>`). `target` is a RunLogger (nothing is written when it is
    disabled, on ranks other than 0) or a SummaryWriter. The gradients are what each
    parameter's .grad holds when called: after a training step, those of the last update of
    its own parameter group (StepContext.update). Parameters without a gradient get a weight
    histogram only."""
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

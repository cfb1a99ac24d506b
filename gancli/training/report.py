"""What a run says when it starts and when it ends, on the console (rich) and in train.log
(Python logging, which Hydra's job logging sends to <run dir>/train.log).

Start: the run directory, device and threads, the groups chosen, each network's parameters,
the command that resumes it. End: where the checkpoint, samples and logs are, and the final
metrics. Also the `reals.png` grid of training images every image run writes once, beside its
samples (as stylegan2-ada does), so generated grids can be compared with the data.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from gancli.config import Config

log = logging.getLogger("gancli")
REALS = "reals.png"


def _count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def _show(title: str, rows: list[tuple[str, str]], console: Console | None) -> None:
    """A titled block of `key  value` lines; long paths wrap, never cut."""
    for key, value in rows:
        log.info("%s: %s", key, value)
    console = console or Console(stderr=True)
    console.rule(f"[bold]{title}", align="left")
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        console.print(f"[bold]{key:<{width}}[/bold]  {escape(value)}", soft_wrap=True,
                      highlight=False)


def run_start(cfg: Config, run_dir: Path, device: torch.device, family,
              start: int = 0, resumed_from: Path | None = None,
              console: Console | None = None) -> None:
    networks = ", ".join(f"{name} {_count(sum(p.numel() for p in net.parameters()))}"
                         for name, net in family.networks().items())
    rows = [
        ("run", str(run_dir)),
        ("device", f"{device}, {torch.get_num_threads()} CPU threads "
                   f"(device.threads={cfg.device.threads})"),
        ("config", f"dataset={cfg.dataset.name} model={cfg.model.name} loss={cfg.loss.name} "
                   f"optimizer={cfg.optimizer.name} seed={cfg.seed}"),
        ("parameters", networks),
        ("steps", f"{start + 1}..{cfg.train.steps}"
                  + (f", resumed from {resumed_from}" if resumed_from else "")),
        ("resume", f"gan train resume={run_dir}"),
    ]
    _show("gan train", rows, console)


def run_end(run_dir: Path, record: dict, metric: str, value: float,
            console: Console | None = None) -> None:
    ckpt = run_dir / "checkpoints"
    best = ckpt / "best.pt"
    shown = {k: v for k, v in record.items() if k != "step" and isinstance(v, (int, float))}
    finals = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
    rows = [
        ("checkpoint", str(ckpt / "last.pt") + (f" (best: {best})" if best.exists() else "")),
        ("samples", str(run_dir / "samples")),
        ("logs", f"{run_dir / 'train.log'}, {run_dir / 'metrics.jsonl'}, {run_dir / 'tb'}"),
        ("final", f"step {record.get('step', '?')}: {finals}" if finals else "(none logged)"),
        ("train.metric", f"{metric} = {value:.6g}" if math.isfinite(value) else
                         f"{metric} = {value}"),
    ]
    _show("done", rows, console)


def write_reals(data, run_dir: Path, n: int, seed: int) -> Path | None:
    """`reals.png`: n training images, the same ones each time for a seed (image data only)."""
    from gancli.images import image_grid, save_png

    path = run_dir / REALS
    if data.info.kind != "image" or path.exists():
        return None
    return save_png(image_grid(data.real_samples(n, seed).float().cpu()), path)

"""Continuing a run: which checkpoint, and whether the new config may continue it."""

from __future__ import annotations

from pathlib import Path

from gancli.config import Config, to_container
from gancli.errors import GanError

# Settings a resumed run may change; everything else must equal the checkpoint's config,
# or the continued run would not be the same experiment.
MAY_CHANGE = {
    "resume", "device.name", "train.steps", "train.sample_every", "train.ckpt_every",
    "train.log_every", "train.num_samples", "train.num_workers", "train.metric",
    "train.keep_last", "train.auto_resume", "train.nan_policy", "device.threads",
    # evaluation reads the generator and never moves the trajectory
    "train.eval_every", "train.eval_metric", "train.eval_n", "train.eval_inception_weights",
    # how fast, not what: a run may move to another machine (rounding differs, nothing else)
    "train.precision", "train.channels_last", "train.compile", "train.cudnn_benchmark",
}


def run_dir_of(path: str | Path) -> Path:
    """A run directory, or the run directory a checkpoint file sits in."""
    path = Path(path)
    return path if path.is_dir() else path.parent.parent


def checkpoint_to_resume(cfg: Config, run_dir: Path) -> Path | None:
    if cfg.resume:
        path = Path(cfg.resume)
        path = path / "checkpoints" / "last.pt" if path.is_dir() else path
        if not path.is_file():
            raise GanError(f"resume: no checkpoint at {path}")
        return path
    last = run_dir / "checkpoints" / "last.pt"
    return last if cfg.train.auto_resume and last.is_file() else None


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        flat.update(_flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return flat


def check_compatible(cfg: Config, saved: dict, path: Path) -> None:
    now, before = _flatten(to_container(cfg)), _flatten(saved)
    conflicts = sorted(k for k in now.keys() | before.keys()
                       if k not in MAY_CHANGE and now.get(k) != before.get(k))
    if conflicts:
        detail = ", ".join(f"{k}={now.get(k)!r} (was {before.get(k)!r})" for k in conflicts[:4])
        more = f" and {len(conflicts) - 4} more" if len(conflicts) > 4 else ""
        raise GanError(f"cannot resume {path}: the config conflicts with the run's: "
                       f"{detail}{more}; drop those overrides or start a new run")

"""Continuing a run: which checkpoint, the config it continues with, and what may change.

`gan train resume=<run dir or checkpoint>` alone continues with the run's own config (the one
stored in its checkpoint). Overrides on the same command line apply on top of it, and may
change only what leaves the experiment the same (MAY_CHANGE); the learning rate may change
too when the run stopped on a NaN after that checkpoint. Anything else is refused, naming the
keys.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path

import torch

from gancli.config import Config, current_spelling, escaped, to_container
from gancli.errors import ConfigError, GanError
from gancli.training import snapshot
from gancli.training.checkpoint import (
    REQUIRED,
    load_checkpoint,
    newest_checkpoint,
    stored_config,
)

# Settings a resumed run may change; everything else must equal the checkpoint's config,
# or the continued run would not be the same experiment.
MAY_CHANGE = {
    "resume", "device.name", "train.steps", "train.sample_every", "train.ckpt_every",
    "train.log_every", "train.num_samples", "train.num_workers", "train.metric",
    "train.keep_last", "train.auto_resume", "train.nan_policy", "train.max_skipped",
    "device.threads", "train.max_seconds", "train.clock",  # the budget counts one process
    # evaluation reads the generator and never moves the trajectory
    "train.eval_every", "train.eval_metric", "train.eval_n", "train.eval_inception_weights",
    # how fast, not what: a run may move to another machine (rounding differs, nothing else)
    "train.precision", "train.channels_last", "train.compile", "train.cudnn_benchmark",
    # where the data is read from, not what it is (the data's identity is checked apart)
    "dataset.root", "dataset.download", "dataset.on_bad_file", "dataset.strict",
}
# ... and after the run stopped on a non-finite loss, the remedy the message advises
AFTER_NAN = {"optimizer.lr", "optimizer.lr_g", "optimizer.lr_d"}
NAN_MARKER = "nan_stop.json"

# What a resume reads from a checkpoint beyond REQUIRED (keep in step with the loop's
# `checkpoint()`): a file lacking one is refused in one line before anything is built.
# (the model and optimizer keys differ between checkpoint schemas: snapshot.read checks them)
RESUME_KEYS = {**REQUIRED, "sampler": dict, "rng": dict, "fixed_z": torch.Tensor}

# config groups chosen by `group=name` on the command line
GROUPS = ("dataset", "model", "loss", "optimizer")


class RunFinished(Exception):
    """A resumed run has already reached train.steps: nothing to do (exit status 0)."""


def run_dir_of(path: str | Path) -> Path:
    """A run directory, or the run directory a checkpoint file sits in."""
    path = Path(path)
    return path if path.is_dir() else path.parent.parent


def find_checkpoint(where: str | Path, required: dict | None = None) -> Path:
    """The checkpoint `resume=where` continues from: the file itself, or the run directory's
    newest good checkpoint (a periodic one newer than last.pt, when last.pt was not
    written)."""
    where = Path(where)
    if not where.is_dir():
        if not where.is_file():
            raise GanError(f"resume: no run directory or checkpoint at {where}")
        return where
    folder = where / "checkpoints"
    found = newest_checkpoint(folder, required=required)
    if found is None:
        if any(folder.glob("*.pt")):
            raise GanError(f"resume: no readable checkpoint in {folder} (see the warnings)")
        raise GanError(f"resume: no checkpoint in {folder}")
    return found[0]


def checkpoint_to_resume(cfg: Config, run_dir: Path) -> Path | None:
    if cfg.resume:
        return find_checkpoint(cfg.resume, RESUME_KEYS)
    folder = Path(run_dir) / "checkpoints"
    if not cfg.train.auto_resume or not any(folder.glob("*.pt")):
        return None
    return find_checkpoint(run_dir, RESUME_KEYS)


def load_for_resume(path: Path) -> dict:
    """The checkpoint in today's schema, with every key a resume reads present and of the
    right type."""
    return snapshot.read(path, required={**RESUME_KEYS, **snapshot.RESUME_KEYS})


# --- the config a resume continues with ---------------------------------------------------

def _plain(value):
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def config_for_resume(composed, overrides: list[str]):
    """The run's own config (from the checkpoint `composed.resume` continues from) with the
    command line's explicit overrides applied on top. `composed` is what Hydra built from
    the command line (defaults included); only the keys `overrides` name are taken from it.
    Conflicts are reported later, by check_compatible, naming the keys."""
    from omegaconf import OmegaConf

    path = find_checkpoint(composed.resume, REQUIRED)
    state = load_checkpoint(path, required=REQUIRED)
    base = OmegaConf.create(escaped(current_spelling(state["config"])))
    for override in overrides:
        key, sep, value = override.partition("=")
        key = key.lstrip("+")
        if not sep or key == "resume":
            continue
        if key.startswith("~"):
            raise ConfigError(f"resume: cannot delete {key[1:]} from the run's config")
        if key in ("experiment", "hparams_search"):
            if value not in ("null", ""):
                raise ConfigError(f"resume continues a run with the config it was started "
                                  f"with; drop {override}")
            continue
        if key == "device":  # device=cpu: the device may change
            OmegaConf.update(base, "device.name", composed.device.name)
            continue
        if key in GROUPS:
            if value != base[key].get("name"):  # another file: its keys will conflict
                base[key] = composed[key]
            continue
        if "/" in key:  # hydra/launcher=... and other groups outside the run's config
            continue
        OmegaConf.update(base, key, _plain(OmegaConf.select(composed, key)), force_add=True)
    base.resume = str(composed.resume)
    return base


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        flat.update(_flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return flat


def record_nan(run_dir: str | Path, step: int, net: str) -> None:
    """Note that the run stopped on a non-finite loss at `step`, so that a resume from an
    earlier checkpoint may lower the learning rate."""
    try:
        (Path(run_dir) / NAN_MARKER).write_text(json.dumps({"step": step, "net": net}) + "\n")
    except OSError:
        pass


def _stopped_on_nan_after(run_dir: Path, step: int | None) -> bool:
    try:
        marker = json.loads((run_dir / NAN_MARKER).read_text())
        return step is not None and int(marker["step"]) > step
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _with_defaults(saved: dict) -> dict:
    """The run's config, flattened, with the keys it lacks (added by a later gancli) at their
    defaults: what the run trained with, so a resume that leaves them alone changes nothing."""
    try:
        return _flatten(to_container(stored_config({"config": saved})))
    except GanError:  # not valid today: compare as stored, every difference named
        return _flatten(saved)


def check_compatible(cfg: Config, saved: dict, path: Path, step: int | None = None) -> None:
    """Refuse a config that would continue a different experiment; print what changed."""
    now, before = _flatten(to_container(cfg)), _with_defaults(saved)
    after_nan = _stopped_on_nan_after(run_dir_of(path), step)
    allowed = MAY_CHANGE | (AFTER_NAN if after_nan else set())
    differ = sorted(k for k in now.keys() | before.keys() if now.get(k) != before.get(k))
    conflicts = [k for k in differ if k not in allowed]
    # another model or dataset: name it once, not each of its keys that differ
    swapped = {g for g in GROUPS if now.get(f"{g}.name") != before.get(f"{g}.name")}
    conflicts = [k for k in conflicts
                 if k.split(".")[0] not in swapped or k.endswith(".name")]
    if conflicts:
        detail = ", ".join(f"{k}={now.get(k)!r} (was {before.get(k)!r})" for k in conflicts[:6])
        more = f" and {len(conflicts) - 6} more" if len(conflicts) > 6 else ""
        hint = ("; the learning rate may change only when the run stopped on a NaN after "
                "this checkpoint" if set(conflicts) & AFTER_NAN else "")
        raise GanError(f"cannot resume {path}: the config conflicts with the run's: "
                       f"{detail}{more}{hint}; drop those overrides or start a new run")
    changed = [k for k in differ if k not in ("resume", "train.auto_resume")]
    if changed and os.environ.get("RANK", "0") == "0":
        print("resume: changed " + ", ".join(f"{k} {before.get(k)!r} -> {now.get(k)!r}"
                                            for k in changed), file=sys.stderr)


def learning_rate_changed(cfg: Config, saved: dict) -> bool:
    before = _with_defaults(saved)
    now = _flatten(to_container(cfg))
    return any(now.get(k) != before.get(k) for k in AFTER_NAN)


def set_learning_rate(opt: torch.optim.Optimizer, sched, lr: float) -> None:
    """Use `lr` from here on: optimizer state loaded from a checkpoint carries the old one."""
    sched.base_lrs = [lr] * len(opt.param_groups)
    for group, factor in zip(opt.param_groups, sched.lr_lambdas, strict=True):
        group["initial_lr"] = lr
        group["lr"] = lr * factor(sched.last_epoch)


# --- the command that continues a run -----------------------------------------------------

_PLAIN = re.compile(r"[\w@%+=:,./-]+")


def resume_command(run_dir: str | Path) -> str:
    """The command line that continues the run in `run_dir`, ready to paste: under torchrun
    a torchrun command with the same number of processes."""
    from gancli.torchrun import quote

    path = str(Path(run_dir).absolute())
    arg = f"resume={path}" if _PLAIN.fullmatch(path) else shlex.quote(f"resume={quote(path)}")
    if "TORCHELASTIC_RUN_ID" in os.environ:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        nodes = max(1, world // max(local, 1))
        where = "--standalone" if nodes == 1 else f"--nnodes={nodes}"
        return f"torchrun {where} --nproc_per_node={local} -m gancli train {arg}"
    argv = getattr(sys, "orig_argv", [])
    if "-m" in argv[:4] and "gancli" in argv[:5]:
        return f"{shlex.quote(sys.executable)} -m gancli train {arg}"
    return f"gan train {arg}"


def check_same_data(info, state: dict, path: Path, dataset_cfg) -> None:
    """A resumed run must see the data it was trained on: a dataset whose identity can change
    under the same config (a folder's file list) is compared with the checkpoint's. A change
    warns, or with dataset.strict=true refuses."""
    before = str((state.get("data_info") or {}).get("fingerprint") or "")
    now = getattr(info, "fingerprint", "")
    if not before or not now or before == now:
        return
    message = (f"the dataset changed since {path} was written (file list {before} -> {now}): "
               f"files were added, removed or resized, so the resumed run sees other data")
    if getattr(dataset_cfg, "strict", False):
        raise GanError(f"cannot resume: {message}; restore the files or set "
                       f"dataset.strict=false to continue anyway")
    if os.environ.get("RANK", "0") == "0":
        print(f"warning: {message} (dataset.strict=true refuses)", file=sys.stderr)

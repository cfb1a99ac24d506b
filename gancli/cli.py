"""The `gan` command: train (a Hydra app), sample, list.

User errors print as one line and exit with status 1; `--debug` (or HYDRA_FULL_ERROR=1)
shows the traceback instead.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from omegaconf import OmegaConf

from gancli.errors import ConfigError, GanError

USAGE = """usage: gan COMMAND [key=value ...] [--debug]

commands:
  train    train a GAN (Hydra overrides, -m for a sweep), e.g. gan train model=dcgan loss=gan
  sample   draw from a checkpoint, e.g. gan sample ckpt=outputs/<run>/checkpoints/last.pt n=64
  eval     FID/KID/IS/precision-recall, e.g. gan eval ckpt=outputs/<run>/checkpoints/last.pt --fid
           or gan eval --fid real=path/to/images fake=path/to/images
  list     registered datasets, models, losses and optimizers, and their config files
  summary  a sweep's jobs, best first, e.g. gan summary outputs/multirun/<date>/<time>
           [metric=d_loss] [direction=minimize|maximize]

multi-GPU: torchrun --nproc_per_node=N -m gancli train [key=value ...]
"""

CONFIG_GROUPS = ("dataset", "model", "loss", "optimizer", "device")
CHECKED_GROUPS = (*CONFIG_GROUPS, "hparams_search")  # `group=value` checked against conf/<group>/


def _debug() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


class Interrupted(BaseException):
    """SIGINT/SIGTERM outside the training loop (which handles them itself): start-up, or
    the end of a run. A BaseException, so that nothing on the way (Hydra included) reports
    it as an error with a traceback."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum, frame):
    raise Interrupted(signum)


def _fail(message: str) -> None:
    ranks = int(os.environ.get("WORLD_SIZE", "1"))  # under torchrun every rank reports
    where = f"[rank {os.environ.get('RANK', '0')}/{ranks}] " if ranks > 1 else ""
    print(f"error: {where}{message}", file=sys.stderr)
    sys.exit(1)


def group_options(group: str) -> list[str]:
    folder = files("gancli.conf") / group
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def check_group_choices(overrides: list[str]) -> None:
    """Catch `model=nope` before Hydra does, so the error is one line listing the choices."""
    for arg in overrides:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+")  # +experiment=<name> adds a recipe
        if not sep or key not in (*CHECKED_GROUPS, "experiment") or "(" in value:  # skip sweeps
            continue
        options = group_options(key)
        for choice in value.split(","):
            if choice.strip() not in options:
                raise ConfigError(f"unknown {key} '{choice}'; choose one of: {', '.join(options)}")


# --- train -------------------------------------------------------------------------------

def _hydra_app():
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(version_base="1.3", config_path="pkg://gancli.conf", config_name="config")
    def train_app(cfg) -> float:
        from gancli.config import validate
        from gancli.training import runlock
        from gancli.training.checkpoint import describe_last_good
        from gancli.training.loop import train
        from gancli.training.resume import RunFinished, config_for_resume
        from gancli.training.signals import StopRequested

        run_dir = Path(HydraConfig.get().runtime.output_dir)
        try:
            if cfg.get("resume") not in (None, ""):  # the run's own config, overrides on top
                cfg = config_for_resume(cfg, list(HydraConfig.get().overrides.task))
            typed = validate(cfg)
            return train(typed, run_dir)
        except RunFinished as done:
            print(str(done), file=sys.stderr)
            return float("nan")
        except StopRequested as stop:
            print(str(stop), file=sys.stderr)
            sys.exit(128 + stop.signum)
        except GanError as err:
            if _debug():
                raise
            _fail(str(err))
        except OSError as err:  # disk full, a folder not writable, ...: the run stops here
            if _debug():
                raise
            where = f" ({err.filename})" if err.filename else ""
            _fail(f"I/O error{where}: {err.strerror or err}; the run stopped, "
                  f"{describe_last_good(run_dir / 'checkpoints')}")
        finally:
            runlock.release(run_dir)

    return train_app


def _override(args: list[str], key: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{key}=")]
    return values[-1] if values else None


def continue_in_run_dir(args: list[str]) -> list[str]:
    """`resume=X` writes into X's run directory, so checkpoints and logs carry on in one place.
    The run's own `.hydra/` files stay as they are: the config comes from its checkpoint."""
    from gancli.torchrun import quote
    from gancli.training.resume import run_dir_of

    resume = _override(args, "resume")
    if not resume or resume == "null":
        return args
    if not Path(resume).exists():
        raise GanError(f"resume: no run directory or checkpoint at {resume}")
    if "-m" in args or "--multirun" in args:
        raise ConfigError("resume= continues one run; it cannot be combined with -m")
    args = [_forced(a) for a in args]
    extra = [] if _override(args, "hydra.output_subdir") else ["hydra.output_subdir=null"]
    if not _override(args, "hydra.run.dir"):
        extra.append(f"hydra.run.dir={quote(str(run_dir_of(resume)))}")
    return [*args, *extra]


def _forced(arg: str) -> str:
    """`key=value` -> `++key=value` for a resume: the value applies on top of the run's own
    config, whose model or dataset may have keys the default config lacks."""
    key, sep, _ = arg.partition("=")
    if (not sep or key[:1] in "+~" or key in (*CHECKED_GROUPS, "resume") or "/" in key
            or key.startswith("hydra.") or "." not in key):
        return arg
    return f"++{arg}"


def _plain_run_dir(args: list[str]) -> Path | None:
    """The run directory when the command line fixes it (no interpolation, one run)."""
    if "-m" in args or "--multirun" in args:
        return None
    value = _override(args, "hydra.run.dir")
    if not value or "$" in value:
        return None
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].replace("\\'", "'")
    return Path(value)


def check_output_dir(args: list[str]) -> None:
    """Fail in one line, before Hydra tries, when the run directory cannot be created."""
    multirun = "-m" in args or "--multirun" in args
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    target = Path((_override(args, key) or "outputs").split("$")[0] or ".").absolute()
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise GanError(f"cannot create the run directory {target}: {existing} is not a writable "
                       f"directory; run from another folder or set {key}=<path>")
    plain = _plain_run_dir(args)
    if plain is not None:  # os.access says yes to root everywhere: try it (/proc, read-only)
        try:
            plain.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise GanError(f"cannot create the run directory {plain.absolute()}: "
                           f"{err.strerror or err}; set {key}=<path>") from None


def lock_run_dir(args: list[str]) -> None:
    """Take the run directory's lock before Hydra writes into it, when the command line
    fixes the directory (a resume always does); the training loop takes it otherwise."""
    from gancli.training import distributed, runlock

    plain = _plain_run_dir(args)
    if plain is not None and not distributed.launched():
        runlock.acquire(plain)


def cmd_train(args: list[str]) -> None:
    from gancli import torchrun
    from gancli.training import distributed

    check_group_choices(args)
    args = continue_in_run_dir(args)
    check_output_dir(args)
    lock_run_dir(args)
    try:
        sys.argv = ["gan train", *torchrun.hydra_args(args)]  # unchanged outside torchrun
        _hydra_app()()
    finally:
        distributed.shutdown()


# --- sample ------------------------------------------------------------------------------

def parse_args(schema: type, args: list[str]):
    """key=value arguments -> a validated dataclass instance."""
    from gancli.config import _typed

    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"expected key=value, got '{arg}'")
    return _typed(schema, OmegaConf.from_dotlist(args), "")


def cmd_sample(args: list[str]) -> None:
    from gancli.sampling import SampleArgs, run_sample

    parsed = parse_args(SampleArgs, args)
    if not parsed.ckpt:
        raise ConfigError("ckpt is required: gan sample ckpt=outputs/<run>/checkpoints/last.pt")
    print(run_sample(parsed))


# --- eval --------------------------------------------------------------------------------

EVAL_FLAGS = {"--fid": "fid", "--kid": "kid", "--is": "is", "--pr": "pr"}


def cmd_eval(args: list[str]) -> None:
    from gancli.metrics.evaluate import EvalArgs, print_table, run_eval

    for arg in args:
        if arg.startswith("--") and arg not in EVAL_FLAGS:
            raise ConfigError(f"unknown flag {arg}; choose from {' '.join(EVAL_FLAGS)}")
    chosen = [EVAL_FLAGS[a] for a in args if a in EVAL_FLAGS]
    rest = [a for a in args if a not in EVAL_FLAGS]
    if chosen:
        rest.append(f"metrics=[{','.join(chosen)}]")
    print_table(run_eval(parse_args(EvalArgs, rest)))


# --- list --------------------------------------------------------------------------------

def cmd_list(args: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from gancli.config import GROUPS

    table = Table(title="gancli: what `name` can be in each config group")
    table.add_column("group")
    table.add_column("registered builders")
    table.add_column("config files (group=<file>)")
    for group in CONFIG_GROUPS:
        names = GROUPS[group].names() if group in GROUPS else ["auto", "cpu", "cuda"]
        table.add_row(group, ", ".join(names), ", ".join(group_options(group)))
    table.add_row("+experiment", "(recipes)", ", ".join(group_options("experiment")))
    Console().print(table)


# --- summary -----------------------------------------------------------------------------

@dataclass
class SummaryArgs:
    metric: str | None = None  # default: the jobs' train.metric
    direction: str | None = None  # default: the Optuna sweeper's, else minimize


def cmd_summary(args: list[str]) -> None:
    from gancli.summary import summarize

    if not args or "=" in args[0]:
        raise ConfigError("usage: gan summary <multirun folder> [metric=...] [direction=...]")
    parsed = parse_args(SummaryArgs, args[1:])
    summarize(args[0], parsed.metric, parsed.direction)


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "list": cmd_list,
            "summary": cmd_summary}


def main(argv: list[str] | None = None) -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):  # one line, not a traceback or silence
            signal.signal(sig, _interrupt)
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in argv:
        argv.remove("--debug")
        os.environ["HYDRA_FULL_ERROR"] = "1"
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return
    command = COMMANDS.get(argv[0])
    if command is None:
        _fail(f"unknown command '{argv[0]}'; choose one of: {', '.join(COMMANDS)}")
    try:
        command(argv[1:])
    except GanError as err:
        if _debug():
            raise
        _fail(str(err))
    except (Interrupted, KeyboardInterrupt) as err:
        signum = getattr(err, "signum", signal.SIGINT)
        when = (" before training began or after it ended; no checkpoint was written for this "
                "stop" if argv[0] == "train" else "")
        print(f"error: stopped by {signal.Signals(signum).name}{when}", file=sys.stderr)
        sys.exit(128 + signum)

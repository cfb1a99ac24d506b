"""The `gan` command: train (a Hydra app), sample, list.

User errors print as one line and exit with status 1; `--debug` (or HYDRA_FULL_ERROR=1)
shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from omegaconf import OmegaConf

from gancli.errors import ConfigError, GanError

USAGE = """usage: gan COMMAND [key=value ...] [--debug]

commands:
  train    train a GAN (Hydra overrides, -m for a sweep), e.g. gan train model=dcgan loss=gan
  sample   draw from a checkpoint, e.g. gan sample ckpt=outputs/<run>/checkpoints/last.pt n=64
           (perturb=0.1,0.3,1.0: rows of each latent nudged by growing amounts)
  eval     FID/KID/IS/precision-recall, e.g. gan eval ckpt=outputs/<run>/checkpoints/last.pt --fid
           or gan eval --fid real=path/to/images fake=path/to/images
           or gan eval ckpt=<cgan run> --gan-train --gan-test (classifier accuracies)
  list     registered datasets, models, losses and optimizers, and their config files
  summary  a sweep's jobs, best first, e.g. gan summary outputs/multirun/<date>/<time>
           [metric=d_loss] [direction=minimize|maximize]
  viz      real vs generated in 2D, e.g. gan viz ckpt=outputs/<run> method=tsne|pca
           features=classifier|inception|d|latent|pixels n=2000 out=map.png
  plot     curves of one or more runs, and each run's samples.gif, e.g.
           gan plot outputs/<run> outputs/<other run> out=curves.png [gif=false]
  report   one self-contained HTML page for a run, e.g.
           gan report outputs/<run> out=report.html [tsne=true]
  nn       memorisation check: generated samples beside their nearest training images, e.g.
           gan nn ckpt=outputs/<run> n=8 k=5 features=classifier|inception|pixels out=nn.png

multi-GPU: torchrun --nproc_per_node=N -m gancli train [key=value ...]
"""

CONFIG_GROUPS = ("dataset", "model", "loss", "optimizer", "device")
CHECKED_GROUPS = (*CONFIG_GROUPS, "hparams_search")  # `group=value` checked against conf/<group>/


def _debug() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


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
        from gancli.training.loop import train
        from gancli.training.signals import StopRequested

        try:
            typed = validate(cfg)
            return train(typed, HydraConfig.get().runtime.output_dir)
        except StopRequested as stop:
            print(str(stop), file=sys.stderr)
            sys.exit(128 + stop.signum)
        except GanError as err:
            if _debug():
                raise
            _fail(str(err))

    return train_app


def _override(args: list[str], key: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{key}=")]
    return values[-1] if values else None


def continue_in_run_dir(args: list[str]) -> list[str]:
    """`resume=X` writes into X's run directory, so checkpoints and logs carry on in one place."""
    from gancli.training.resume import run_dir_of

    resume = _override(args, "resume")
    if not resume or resume == "null" or _override(args, "hydra.run.dir"):
        return args
    if not Path(resume).exists():
        raise GanError(f"resume: no run directory or checkpoint at {resume}")
    if "-m" in args or "--multirun" in args:
        raise ConfigError("resume= continues one run; it cannot be combined with -m")
    return [*args, f"hydra.run.dir={run_dir_of(resume)}"]


def check_output_dir(args: list[str]) -> None:
    """Fail in one line, before Hydra tries, when the run directory cannot be created."""
    multirun = "-m" in args or "--multirun" in args
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    target = Path((_override(args, key) or "outputs").split("$")[0] or ".").absolute()
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise GanError(f"cannot create the run directory {target}: {existing} is not a writable "
                       f"directory; run from another folder or set {key}=<path>")


def cmd_train(args: list[str]) -> None:
    from gancli import torchrun
    from gancli.training import distributed

    check_group_choices(args)
    args = continue_in_run_dir(args)
    check_output_dir(args)
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
GAN_TRAIN_FLAGS = ("--gan-train", "--gan-test")


def cmd_gan_train_test(args: list[str]) -> None:
    import json

    from gancli.metrics.gan_train import GanTrainArgs, print_gan_train_test, run_gan_train_test

    flags = [a for a in args if a.startswith("--")]
    for flag in flags:
        if flag not in GAN_TRAIN_FLAGS:
            raise ConfigError(f"{flag} cannot be combined with --gan-train / --gan-test; run "
                              f"them apart")
    parsed = parse_args(GanTrainArgs, [a for a in args if not a.startswith("--")])
    result = run_gan_train_test(parsed, "--gan-train" in flags, "--gan-test" in flags)
    print_gan_train_test(result)
    if parsed.out:
        out = Path(parsed.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


def cmd_eval(args: list[str]) -> None:
    from gancli.metrics.evaluate import EvalArgs, print_table, run_eval

    if any(a in GAN_TRAIN_FLAGS for a in args):
        return cmd_gan_train_test(args)
    for arg in args:
        if arg.startswith("--") and arg not in EVAL_FLAGS:
            raise ConfigError(f"unknown flag {arg}; choose from "
                              f"{' '.join([*EVAL_FLAGS, *GAN_TRAIN_FLAGS])}")
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


# --- viz ---------------------------------------------------------------------------------

def cmd_viz(args: list[str]) -> None:
    from gancli.viz.maps import MapArgs, run_map

    picture, numbers = run_map(parse_args(MapArgs, args))
    print(f"{picture}\n{numbers}")


def cmd_plot(args: list[str]) -> None:
    from gancli.viz.curves import PlotArgs, run_plot

    runs = [a for a in args if "=" not in a]
    parsed = parse_args(PlotArgs, [a for a in args if "=" in a])
    print("\n".join(str(p) for p in run_plot(runs, parsed)))


def cmd_nn(args: list[str]) -> None:
    from gancli.viz.neighbours import NeighbourArgs, run_neighbours

    picture, numbers, result = run_neighbours(parse_args(NeighbourArgs, args))
    gen = result["generated_to_train"]
    print(f"nearest-training-item distance ({result['features']}, "
          f"{result['train_items']} training items):")
    print(f"  generated: median {gen['median']:.4g}, mean {gen['mean']:.4g} ({gen['n']})")
    if "held_out_to_train" in result:
        held = result["held_out_to_train"]
        print(f"  held-out real: median {held['median']:.4g}, mean {held['mean']:.4g} "
              f"({held['n']}); generated / held-out median: "
              f"{result['median_ratio_generated_over_held_out']:.3f}")
    else:
        print("  no held-out real items in this run (dataset.holdout=0): nothing to compare")
    print(f"{picture}\n{numbers}")


def cmd_report(args: list[str]) -> None:
    from gancli.viz.report import ReportArgs, run_report

    runs = [a for a in args if "=" not in a]
    if len(runs) != 1:
        raise ConfigError("usage: gan report RUN [out=report.html] [tsne=true]")
    print(run_report(runs[0], parse_args(ReportArgs, [a for a in args if "=" in a])))


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "eval": cmd_eval, "list": cmd_list,
            "summary": cmd_summary, "viz": cmd_viz, "plot": cmd_plot, "report": cmd_report,
            "nn": cmd_nn}


def main(argv: list[str] | None = None) -> None:
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

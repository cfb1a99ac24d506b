"""The `gan` command: train (a Hydra app), sample, list.

User errors print as one line and exit with status 1; `--debug` (or HYDRA_FULL_ERROR=1)
shows the traceback instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from gancli.config import check_renamed, group_options
from gancli.errors import ConfigError, GanError
from gancli.paths import expand_user_path
from gancli.training.signals import Interrupted, forget_stop, raise_unhandled_stop, stop_now

CONFIG_GROUPS = ("dataset", "model", "loss", "optimizer", "device")
CHECKED_GROUPS = (*CONFIG_GROUPS, "hparams_search")  # `group=value` checked against conf/<group>/


def _debug() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def _fail(message: str) -> None:
    ranks = int(os.environ.get("WORLD_SIZE", "1"))  # under torchrun every rank reports
    where = f"[rank {os.environ.get('RANK', '0')}/{ranks}] " if ranks > 1 else ""
    print(f"error: {where}{message}", file=sys.stderr)
    sys.exit(1)


def check_group_choices(overrides: list[str]) -> None:
    """Catch `model=nope` (and renamed keys) before Hydra does, so the error is one line
    listing the choices (naming the new key)."""
    for arg in overrides:
        key, sep, value = arg.partition("=")
        check_renamed(key)
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
        import logging

        from gancli.config import validate
        from gancli.training import runlock
        from gancli.training.checkpoint import describe_last_good
        from gancli.training.loop import train
        from gancli.training.resume import RunFinished, config_for_resume
        from gancli.training.signals import StopRequested

        logging.captureWarnings(True)  # warnings go to train.log too (Hydra's job logging)
        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir)
        try:
            if cfg.get("resume") not in (None, ""):  # the run's own config, overrides on top
                cfg = config_for_resume(cfg, list(HydraConfig.get().overrides.task))
            typed = validate(cfg)
            if typed.device.threads == "auto" and _parallel_launcher(hydra_cfg):
                typed.device.threads = "1"  # jobs side by side share the cores
            return train(typed, run_dir)
        except RunFinished as done:
            print(str(done), file=sys.stderr)
            return float("nan")
        except StopRequested as stop:
            print(str(stop), file=sys.stderr)
            sys.exit(128 + stop.signum)
        except OSError as err:  # disk full, a folder not writable, ...: the run stops here
            if _debug():
                raise
            where = f" ({err.filename})" if err.filename else ""
            _fail(f"I/O error{where}: {err.strerror or err}; the run stopped, "
                  f"{describe_last_good(run_dir / 'checkpoints')}")
        except BaseException as err:
            if str(hydra_cfg.mode) != "RunMode.MULTIRUN":  # a sweep's summary lists failed jobs
                remove_if_unstarted(run_dir)
            if not isinstance(err, GanError) or _debug():
                raise
            _fail(str(err))
        finally:
            runlock.release(run_dir)

    return train_app


def _parallel_launcher(hydra_cfg) -> bool:
    """Under a sweep launcher that runs jobs side by side on this machine (joblib,
    submitit_local)."""
    target = str(OmegaConf.select(hydra_cfg, "launcher._target_", default="") or "")
    return str(hydra_cfg.mode) == "RunMode.MULTIRUN" and any(
        name in target.lower() for name in ("joblib", "submitit_local", "localexecutor"))


HYDRA_ONLY = {".hydra", "train.log", ".gancli.lock"}  # what a run holds before its first step


def remove_if_unstarted(run_dir: Path) -> None:
    """A run that failed before its first step leaves nothing to keep: remove the files Hydra
    created (and the folder, once empty); a folder holding anything else is left alone."""
    try:
        entries = {p.name for p in run_dir.iterdir()}
        if not entries or not entries <= HYDRA_ONLY:
            return
        shutil.rmtree(run_dir / ".hydra", ignore_errors=True)
        (run_dir / "train.log").unlink(missing_ok=True)
        (run_dir / ".gancli.lock").unlink(missing_ok=True)  # ours: this process holds it
        run_dir.rmdir()
        parent = run_dir.parent  # Hydra's outputs/<date>/ folder, when this run was its only one
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", parent.name) and not any(parent.iterdir()):
            parent.rmdir()
    except OSError:
        pass


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


def _is_multirun(args: list[str]) -> bool:
    return "-m" in args or "--multirun" in args


def expand_paths(args: list[str]) -> list[str]:
    """`key=~/x` and `key=$VAR/x` -> the expanded path (Hydra's lexer rejects `~` in a value
    and leaves `$VAR` as text)."""
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and not key.startswith("-") and (value.startswith("~") or (
                "$" in value and "${" not in value)):
            arg = f"{key}={expand_user_path(value)}"
        out.append(arg)
    return out


def _parse_overrides(args: list[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    try:
        return parser.parse_overrides([a for a in args if "=" in a and not a.startswith("-")])
    except Exception as err:  # Hydra's grammar: its first line names the override
        raise ConfigError(f"cannot parse {str(err).splitlines()[0]}") from None


def _choices(override) -> list[str]:
    if override.is_sweep_override():
        return [str(v) for v in override.sweep_string_iterator()]
    return [str(override.value())]


def compose_config(choices: dict[str, str]):
    """The config Hydra composes for these group choices (no other override, no hydra.*)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides = [f"{'+' if group == 'experiment' else ''}{group}={name}"
                 for group, name in choices.items()]
    if GlobalHydra.instance().is_initialized():  # e.g. inside a test's compose
        GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
    except Exception as err:
        raise ConfigError(f"cannot compose the config: {str(err).splitlines()[0]}") from None


def _has_key(cfg, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if not OmegaConf.is_dict(node) or part not in node:
            return False
        node = node[part]
    return True


def _leaf_keys(cfg, prefix: str = "") -> list[str]:
    keys = []
    for k, v in cfg.items():
        name = f"{prefix}{k}"
        keys.extend(_leaf_keys(v, name + ".") if OmegaConf.is_dict(v) else [name])
    return keys


def check_train_keys(args: list[str]) -> None:
    """Every `key=value` must name a key of the config composed for the chosen groups (for a
    sweep over a group, of at least one choice): a typo fails in one line with the nearest
    keys, before Hydra runs (whose advice, `+key=value`, would fail too)."""
    from gancli.usage import check_known

    overrides = _parse_overrides(args)
    if any(o.key_or_group == "resume" and str(o.value()) not in ("", "null", "None")
           for o in overrides):
        return  # the run's own config decides which keys exist; resume checks the overrides
    choices: dict[str, list[str]] = {}
    keys = []
    for o in overrides:
        key = o.key_or_group
        if key in (*CHECKED_GROUPS, "experiment"):
            choices[key] = _choices(o)
        elif not (o.is_add() or o.is_force_add() or o.is_delete() or key.startswith("hydra")):
            keys.append(key)
    if not keys:
        return
    first = {group: names[0] for group, names in choices.items()}
    cfg = compose_config(first)
    for key in keys:
        if _has_key(cfg, key):
            continue
        group = key.split(".")[0]
        others = [compose_config({**first, group: name}) for name in choices.get(group, [])[1:]]
        if not any(_has_key(c, key) for c in others):
            check_known([key], [k for k in _leaf_keys(cfg) if not k.startswith("hydra")],
                        "train")


SLURM_LAUNCHERS = ("slurm", "submitit_slurm")


def check_launcher(args: list[str]) -> None:
    """A Slurm launcher needs `sbatch`; without it submitit fails with a long traceback."""
    launcher = _override(args, "hydra/launcher")
    if launcher in SLURM_LAUNCHERS and _is_multirun(args) and shutil.which("sbatch") is None:
        raise ConfigError(f"hydra/launcher={launcher} submits each job with Slurm's sbatch, "
                          f"which is not on PATH here; run on the cluster, or use "
                          f"hydra/launcher=joblib (parallel jobs on this machine)")


def cmd_train(args: list[str]) -> None:
    from gancli import torchrun
    from gancli.training import distributed

    check_group_choices(args)
    args = expand_paths(args)
    check_train_keys(args)
    check_launcher(args)
    args = continue_in_run_dir(args)
    check_output_dir(args)
    lock_run_dir(args)
    try:
        sys.argv = ["gan train", *torchrun.hydra_args(args)]  # unchanged outside torchrun
        _hydra_app()()
    finally:
        distributed.shutdown()


# --- sample ------------------------------------------------------------------------------

def parse_args(schema: type, args: list[str], command: str = ""):
    """key=value arguments -> a validated dataclass instance; an unknown key fails naming
    the nearest known ones."""
    from gancli.config import _typed
    from gancli.usage import check_known, schema_keys

    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"expected key=value, got '{arg}' (gan {command} --help lists "
                              f"the keys)")
    check_known([a.split("=", 1)[0] for a in args], [k.name for k in schema_keys(schema)],
                command)
    return _typed(schema, OmegaConf.from_dotlist(args), "")


def cmd_sample(args: list[str]) -> None:
    from gancli.sampling import SampleArgs, run_sample

    parsed = parse_args(SampleArgs, args, "sample")
    if not parsed.ckpt:
        raise ConfigError("ckpt is required: gan sample ckpt=outputs/<run>/checkpoints/last.pt")
    print(run_sample(parsed))


def cmd_translate(args: list[str]) -> None:
    from gancli.translate import TranslateArgs, run_translate

    print(run_translate(parse_args(TranslateArgs, args, "translate")))


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
    parsed = parse_args(GanTrainArgs, [a for a in args if not a.startswith("--")], "eval")
    result = run_gan_train_test(parsed, "--gan-train" in flags, "--gan-test" in flags)
    print_gan_train_test(result)
    if parsed.out:
        out = Path(parsed.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


def cmd_eval(args: list[str]) -> None:
    from gancli.metrics.evaluate import EvalArgs, print_table, run_eval, write_result

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
    parsed = parse_args(EvalArgs, rest, "eval")
    if parsed.truncation is not None:
        return cmd_truncation_curve(parsed)
    result = run_eval(parsed, write_out=False)
    print_table(result)  # first: the metrics are shown even when out= cannot be written
    if parsed.out:
        print(f"written: {write_result(result, parsed.out)}")


def cmd_truncation_curve(parsed) -> None:
    from gancli.metrics.evaluate import write_result
    from gancli.metrics.truncation_curve import print_curve, run_truncation_curve
    from gancli.viz.truncation import plot_truncation_curve

    result = run_truncation_curve(parsed)
    print_curve(result)
    if parsed.plot:
        print(f"plotted: {plot_truncation_curve(result, parsed.plot)}")
    if parsed.out:
        print(f"written: {write_result(result, parsed.out)}")


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
    parsed = parse_args(SummaryArgs, args[1:], "summary")
    summarize(expand_user_path(args[0]), parsed.metric, parsed.direction)


# --- viz ---------------------------------------------------------------------------------

def cmd_viz(args: list[str]) -> None:
    from gancli.viz.maps import MapArgs, run_map

    picture, numbers = run_map(parse_args(MapArgs, args, "viz"))
    print(f"{picture}\n{numbers}")


def cmd_plot(args: list[str]) -> None:
    from gancli.viz.curves import PlotArgs, run_plot

    runs = [a for a in args if "=" not in a]
    parsed = parse_args(PlotArgs, [a for a in args if "=" in a], "plot")
    print("\n".join(str(p) for p in run_plot(runs, parsed)))


def cmd_nn(args: list[str]) -> None:
    from gancli.viz.neighbours import NeighbourArgs, run_neighbours

    picture, numbers, result = run_neighbours(parse_args(NeighbourArgs, args, "nn"))
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
    print(run_report(runs[0], parse_args(ReportArgs, [a for a in args if "=" in a], "report")))


COMMANDS = {"train": cmd_train, "sample": cmd_sample, "translate": cmd_translate,
            "eval": cmd_eval, "list": cmd_list,
            "summary": cmd_summary, "viz": cmd_viz, "plot": cmd_plot, "report": cmd_report,
            "nn": cmd_nn}


# --- help --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CommandHelp:
    """What `gan <command> --help` prints. A command in COMMANDS with an entry here gets its
    --help and its unknown-key checks from `schema` (or `keys`, for a schema that depends on
    the arguments); one without an entry shows its function's docstring."""

    summary: str  # one line, also listed by `gan --help`
    usage: str = "[key=value ...]"  # the arguments after `gan <command>`
    schema: str | None = None  # "module.Dataclass" of the key=value arguments (lazy import)
    keys: Callable[[list[str]], list] | None = None  # args -> [usage.Key], instead of schema
    notes: tuple[str, ...] = ()  # paragraphs after the keys
    examples: tuple[str, ...] = field(default_factory=tuple)


def train_keys(args: list[str]) -> list:
    """The keys of the config `gan train <args>` composes: the top level and train.* typed in
    gancli/config.py, each group's keys typed by its builder's dataclass; defaults are the
    composed values."""
    from gancli.config import GROUPS, Config
    from gancli.usage import Key, schema_keys

    choices = {}
    for o in _parse_overrides(args):
        if o.key_or_group in (*CHECKED_GROUPS, "experiment"):
            choices[o.key_or_group] = _choices(o)[0]
    cfg = compose_config(choices)
    keys = [k for k in schema_keys(Config) if k.name.split(".")[0] not in GROUPS]
    for group, registry in GROUPS.items():
        entry = registry.get(str(cfg[group].name))
        keys += schema_keys(entry.config, f"{group}.", name_doc=f"the {group} builder; "
                            f"choose a file with {group}=<file> (gan list)")
    shown = []
    for k in keys:
        if _has_key(cfg, k.name):
            value = OmegaConf.select(cfg, k.name)
            if OmegaConf.is_config(value):
                value = OmegaConf.to_container(value)
            k = Key(k.name, k.type, _shown_value(value), k.doc)
        shown.append(k)
    return shown


def _shown_value(value) -> str:
    from gancli.usage import _shown

    return _shown(value)


HELP: dict[str, CommandHelp] = {
    "train": CommandHelp(
        "train a model; one run directory per run (-m: a sweep, one job per combination)",
        usage="[group=file ...] [key=value ...] [-m] [--debug]",
        keys=train_keys,
        notes=("groups (gan list shows the files): dataset=, model=, loss=, optimizer=, "
               "device=, hparams_search= (with -m), +experiment= (a recipe), hydra/launcher= "
               "(with -m). The keys below are those of the groups chosen on this command "
               "line: `gan train model=mlp --help` shows model=mlp's.",
               "Hydra's own settings (hydra.run.dir=..., hydra.sweeper.*) work too; "
               "`+key=value` adds a key no schema has."),
        examples=("gan train",
                  "gan train model=mlp dataset=ring8 train.steps=2000",
                  "gan train -m loss=gan,hinge seed=1,2",
                  "gan train -m hparams_search=grid25_optuna",
                  "gan train dataset=folder dataset.root=~/faces dataset.resolution=64",
                  "gan train resume=outputs/<run>")),
    "sample": CommandHelp(
        "draw from a checkpoint: a .png grid, an .npz array, or a folder of PNG files",
        usage="ckpt=<run dir or .pt> [key=value ...]",
        schema="gancli.sampling.SampleArgs",
        notes=("Paths may start with ~ or hold $VARIABLES. out= is checked before "
               "anything is drawn.",),
        examples=("gan sample ckpt=outputs/<run>/checkpoints/last.pt n=64 out=grid.png",
                  "gan sample ckpt=outputs/<run> n=2500 out=samples.npz",
                  "gan sample ckpt=outputs/<run> interpolate=8 out=interp.png",
                  "gan sample ckpt=outputs/<run> n=1000 out=pngs/",
                  "gan sample ckpt=<biggan run> truncation=0.5 standing_stats=16 out=t.png")),
    "translate": CommandHelp(
        "run a trained translator (model=cyclegan, pix2pix) on a folder of images or its "
        "held-out test items",
        usage="ckpt=<run dir or .pt> [input=DIR|dataset] [direction=a2b|b2a] [key=value ...]",
        schema="gancli.translate.TranslateArgs",
        notes=("Images of any size, grey, RGB or RGBA, are converted to the run's channels "
               "and resized to its training size. A .png grid shows each row of inputs above "
               "their outputs; a folder gets one PNG per input, named as the input.",),
        examples=("gan translate ckpt=outputs/<run> input=dataset out=grid.png",
                  "gan translate ckpt=outputs/<run> input=~/photos direction=b2a out=out/",
                  "gan translate ckpt=outputs/<run> out=translated.npz")),
    "eval": CommandHelp(
        "FID, KID, IS and precision/recall of a checkpoint or an image folder against real "
        "images",
        usage="[--fid] [--kid] [--is] [--pr] [key=value ...]",
        schema="gancli.metrics.evaluate.EvalArgs",
        notes=("Flags choose the metrics (default --fid); metrics=[fid,kid] is the same. "
               "The table is printed before out= is written.",
               "On a translation run (model=cyclegan, pix2pix): FID per direction on the "
               "held-out items, label preservation when both domains are labeled, and L1, "
               "PSNR, SSIM for paired data; the flags do not apply.",),
        examples=("gan eval ckpt=outputs/<run> --fid --kid",
                  "gan eval ckpt=outputs/<run> extractor=mnist --fid --pr out=metrics.json",
                  "gan eval --fid real=cifar10 fake=pngs/",
                  "gan eval ckpt=<biggan run> extractor=mnist truncation=2,1,0.5 plot=curve.png",
                  "gan eval ckpt=<cgan run> --gan-train --gan-test  (GAN-train/GAN-test: "
                  "keys of gancli.metrics.gan_train.GanTrainArgs)")),
    "list": CommandHelp(
        "the registered datasets, models, losses and optimizers, and their config files",
        usage="", examples=("gan list",)),
    "summary": CommandHelp(
        "a sweep's jobs (or one run) with their final metrics, best first; also writes "
        "summary.csv",
        usage="<multirun folder or run dir> [key=value ...]",
        schema="gancli.cli.SummaryArgs",
        notes=("The default metric is what the jobs returned to the sweeper (train.metric), "
               "ranked in that metric's own direction (fid: lower is better, ...).",),
        examples=("gan summary outputs/multirun/<date>/<time>",
                  "gan summary outputs/multirun/<date>/<time> metric=g_loss "
                  "direction=minimize")),
    "viz": CommandHelp(
        "real and generated samples embedded in 2D (t-SNE or PCA), coloured by source and "
        "class; the numbers in an .npz beside the picture",
        usage="ckpt=<run dir or .pt> [key=value ...]",
        schema="gancli.viz.maps.MapArgs",
        examples=("gan viz ckpt=outputs/<run> method=tsne out=tsne.png",
                  "gan viz ckpt=outputs/<run> method=pca features=d out=pca.png",
                  "gan viz ckpt=outputs/<vae run> features=latent out=codes.png")),
    "plot": CommandHelp(
        "losses, D(x)/D(G(z)), gradient norms and evaluation metrics of one or more runs, "
        "overlaid; and each run's samples.gif",
        usage="RUN [RUN ...] [key=value ...]",
        schema="gancli.viz.curves.PlotArgs",
        examples=("gan plot outputs/<run> out=curves.png",
                  "gan plot outputs/<run a> outputs/<run b> out=both.png gif=false")),
    "report": CommandHelp(
        "one self-contained HTML page for a run: command, config, curves, grids, metrics",
        usage="RUN [key=value ...]",
        schema="gancli.viz.report.ReportArgs",
        examples=("gan report outputs/<run> out=report.html",
                  "gan report outputs/<run> out=report.html tsne=true")),
    "nn": CommandHelp(
        "memorisation check: generated samples beside their nearest training items, and "
        "generated vs held-out nearest-neighbour distances",
        usage="ckpt=<run dir or .pt> [key=value ...]",
        schema="gancli.viz.neighbours.NeighbourArgs",
        notes=("The held-out comparison needs a run trained with dataset.holdout > 0.",),
        examples=("gan nn ckpt=outputs/<run> n=8 k=5 out=nn.png",
                  "gan nn ckpt=outputs/<run> features=pixels out=nn_pixels.png")),
}


def _schema_class(path: str) -> type:
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _schema_help(name: str, args: list[str]) -> list:
    from gancli.usage import schema_keys

    entry = HELP[name]
    if entry.keys is not None:
        return entry.keys(args)
    return schema_keys(_schema_class(entry.schema)) if entry.schema is not None else []


def usage_text() -> str:
    lines = ["usage: gan COMMAND [key=value ...] [--debug]", "", "commands:"]
    for name, command in COMMANDS.items():
        entry = HELP.get(name)
        summary = entry.summary if entry else (command.__doc__ or "").strip().split("\n")[0]
        lines.append(f"  {name:<8} {summary}")
    lines += ["", "gan COMMAND --help: what it does, its keys (type, default, meaning) and "
              "examples.", "multi-GPU: torchrun --nproc_per_node=N -m gancli train "
              "[key=value ...]"]
    return "\n".join(lines)


def command_help(name: str, args: list[str]) -> str:
    import textwrap

    from gancli.usage import key_table

    entry = HELP.get(name)
    if entry is None:
        return f"usage: gan {name} ...\n\n{(COMMANDS[name].__doc__ or '').strip()}"
    parts = [f"usage: gan {name} {entry.usage}", "", entry.summary]
    keys = _schema_help(name, [a for a in args if a not in ("-h", "--help")])
    if keys:
        parts += ["", "keys (type = default):", key_table(keys)]
    for note in entry.notes:
        parts += ["", textwrap.fill(note, 96)]
    if entry.examples:
        parts += ["", "examples:", *(f"  {e}" for e in entry.examples)]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    previous = {}
    if threading.current_thread() is threading.main_thread():
        stops = (signal.SIGINT, signal.SIGTERM)
        # A blocked mask survives exec: a parent that started us from a thread with these
        # blocked would leave Ctrl-C and a preemption pending until the run ends.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        for sig in stops:  # one line, not a traceback or silence
            previous[sig] = signal.signal(sig, stop_now)
    try:
        _command(list(sys.argv[1:] if argv is None else argv))
    finally:  # called in-process (tests, notebooks): the caller's handlers come back
        if previous:
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, previous)  # none lands half-way
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _command(argv: list[str]) -> None:
    """One gan command; its errors and stops end as one line and an exit status."""
    # Before torch loads OpenMP: waiting threads sleep instead of spinning, which keeps a run
    # fast on a CPU shared with other work (README, Set up); an explicit setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "--debug" in argv:
        argv.remove("--debug")
        os.environ["HYDRA_FULL_ERROR"] = "1"
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage_text())
        return
    command = COMMANDS.get(argv[0])
    if command is None:
        _fail(f"unknown command '{argv[0]}'; choose one of: {', '.join(COMMANDS)}")
    try:
        if "--help" in argv[1:] or "-h" in argv[1:]:
            print(command_help(argv[0], argv[1:]))
            return
        command(argv[1:])
        raise_unhandled_stop()  # a stop whose exception something swallowed on the way
    except GanError as err:
        if _debug():
            raise
        _fail(str(err))
    except (Interrupted, KeyboardInterrupt) as err:
        forget_stop()
        signum = getattr(err, "signum", signal.SIGINT)
        when = (" before training began or after it ended; no checkpoint was written for this "
                "stop" if argv[0] == "train" else "")
        print(f"error: stopped by {signal.Signals(signum).name}{when}", file=sys.stderr)
        sys.exit(128 + signum)

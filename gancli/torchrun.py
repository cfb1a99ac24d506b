"""`gan train` under torchrun: one run directory for all ranks, Hydra's files from rank 0 only.

Hydra resolves the run directory in each process, and `${now:...}` reads each process's own
clock, so ranks that start a second apart (or on machines whose clocks differ) would write into
different folders. Rank 0 therefore composes the config, resolves the directory once, and
every rank passes it to Hydra as `hydra.run.dir`. Ranks other than 0 also turn off Hydra's
`.hydra/` files and log file, which rank 0 writes.
"""

from __future__ import annotations

import re

from gancli.errors import GanError
from gancli.training import distributed

MULTIRUN_FLAGS = ("-m", "--multirun")
QUIET_HYDRA = {  # for ranks other than 0; a choice the user made wins
    "hydra.output_subdir": "null",
    "hydra/job_logging": "disabled",
    "hydra/hydra_logging": "disabled",
}


def _given(args: list[str], key: str) -> bool:
    return any(a.lstrip("+~").startswith(f"{key}=") for a in args)


def quote(value: str) -> str:
    """A Hydra override value that stays one literal string whatever it contains. In Hydra's
    quoted strings only quotes, and backslashes right before a quote, are escaped."""
    value = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    value = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, value)  # before the closing quote
    return f"'{value}'"


def resolve_run_dir(args: list[str]) -> str | None:
    """The run directory `gan train <args>` resolves to now; None when the overrides do not
    compose (Hydra then reports the problem itself, on every rank)."""
    from hydra import compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig

    try:
        with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
            cfg = compose(config_name="config", overrides=args, return_hydra_config=True)
            HydraConfig.instance().set_config(cfg)  # for ${hydra:...} in the directory
            return str(cfg.hydra.run.dir)
    except Exception:
        return None


def hydra_args(args: list[str]) -> list[str]:
    """`args` plus what this rank needs; unchanged outside torchrun."""
    if not distributed.launched():
        return args
    if any(a in MULTIRUN_FLAGS for a in args):
        sweep_dir = next((a for a in args if a.startswith("hydra.sweep.dir=")), "${")
        if "${" in sweep_dir:
            raise GanError("under torchrun, -m needs hydra.sweep.dir=<folder> (a plain path) so "
                           "that every rank writes into the same sweep folder")
        extra = []
    else:
        # also when hydra.run.dir is given: it may hold ${now:...} too
        distributed.init_process_group()
        run_dir = resolve_run_dir(args) if distributed.is_main_process() else None
        run_dir = distributed.broadcast_object(run_dir)
        if run_dir:
            args = [a for a in args if not a.startswith("hydra.run.dir=")]
        extra = [f"hydra.run.dir={quote(run_dir)}"] if run_dir else []
    if not distributed.is_main_process():
        extra += [f"{k}={v}" for k, v in QUIET_HYDRA.items() if not _given(args, k)]
    return [*args, *extra]

"""After a sweep: every job's overrides and final metrics, best first.

A job is a folder holding `.hydra/overrides.yaml` (what Hydra's launcher passed it) and, once it
has logged, `metrics.jsonl` (its last line holds the final values). The same rows are printed
as a rich table, written to `summary.csv` in the sweep folder, and each run writes its own
HParams entry into its TensorBoard log (`write_hparams`) so TensorBoard's HParams tab lists
the same jobs.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from gancli.directions import direction_of, run_metric
from gancli.errors import GanError

DIRECTIONS = ("minimize", "maximize")
# metrics.jsonl keys shown in the table next to the ranking metric (all of them go to the CSV);
# keys not known here (evaluation metrics other modules log) are shown too
TABLE_METRICS = ("d_loss", "g_loss", "d_real", "d_fake")
CSV_NAME = "summary.csv"
SEEDS_CSV_NAME = "summary_seeds.csv"
SEED_KEY = "seed"


@dataclass
class Job:
    num: int
    path: Path
    overrides: dict[str, object]  # key -> value, typed as Hydra parses the override
    metrics: dict[str, float] = field(default_factory=dict)  # last metrics.jsonl line
    steps: int | None = None  # train.steps the job was configured for
    metric: str | None = None  # what the job returned to the sweeper (train.metric resolved)
    direction: str | None = None  # the Optuna sweeper's direction, when one ran the job

    @property
    def status(self) -> str:
        step = self.metrics.get("step")
        if step is None:
            return "no metrics"
        return "done" if self.steps is None or step >= self.steps else "stopped"


def parse_overrides(lines: list[str]) -> dict[str, object]:
    """Hydra override strings -> {key: value}, typed by Hydra's own override parser."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed: dict[str, object] = {}
    for line in lines:
        try:
            override = parser.parse_overrides([line])[0]
            parsed[override.key_or_group] = override.value()
        except Exception:  # an override Hydra accepted but cannot reparse: keep its text
            key, _, value = line.lstrip("+~").partition("=")
            parsed[key] = value
    return parsed


def _load_yaml(path: Path):
    return OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else None


def _last_record(path: Path) -> dict[str, float]:
    """The values logged at the last step: the training record and, when train.eval_every
    is on, the evaluation record written after it on its own line."""
    if not path.is_file():
        return {}
    from gancli.training.logging import read_records

    records = read_records(path)  # a torn last line (a killed job) is dropped
    if not records:
        return {}
    last = records[-1].get("step")
    merged: dict[str, float] = {}
    for record in records:
        if record.get("step") == last:
            merged.update(record)
    return merged


def read_job(folder: Path) -> Job:
    hydra_dir = folder / ".hydra"
    overrides = parse_overrides(_load_yaml(hydra_dir / "overrides.yaml") or [])
    config = _load_yaml(hydra_dir / "config.yaml") or {}
    hydra = (_load_yaml(hydra_dir / "hydra.yaml") or {}).get("hydra", {})
    train = config.get("train", {})
    num = hydra.get("job", {}).get("num")  # '???' in a single run's hydra.yaml
    direction = hydra.get("sweeper", {}).get("direction")
    if isinstance(direction, list):  # multi-objective studies: rank by the first objective
        direction = direction[0] if direction else None
    if str(direction) not in DIRECTIONS:  # unset, or an interpolation saved unresolved
        direction = None
    metric = run_metric(train.get("metric"), train.get("eval_every") or 0,
                        train.get("eval_metric") or "fid",
                        (config.get("model") or {}).get("name", ""))
    return Job(num=int(num) if str(num).isdigit() else -1, path=folder, overrides=overrides,
               metrics=_last_record(folder / "metrics.jsonl"), steps=train.get("steps"),
               metric=metric, direction=str(direction) if direction else None)


def read_sweep(sweep_dir: str | Path) -> list[Job]:
    """Every job under a multirun folder, in job-number order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise GanError(f"no such sweep folder: {sweep_dir}")
    folders = sorted({p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")
                      if ".submitit" not in p.parts})
    if not folders:
        raise GanError(f"{sweep_dir} holds no jobs (no */.hydra/overrides.yaml); "
                       f"pass the folder a `gan train -m` run printed")
    return sorted((read_job(f) for f in folders), key=lambda j: (j.num, str(j.path)))


def rank_jobs(jobs: list[Job], metric: str, direction: str) -> list[Job]:
    """Best first; jobs without a finite value of `metric` come last, by job number."""
    if direction not in DIRECTIONS:
        raise GanError(f"direction must be one of {', '.join(DIRECTIONS)}, got '{direction}'")
    sign = 1.0 if direction == "minimize" else -1.0

    def key(job: Job):
        value = job.metrics.get(metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return (1, 0.0, job.num)
        return (0, sign * value, job.num)

    return sorted(jobs, key=key)


def default_metric(jobs: list[Job]) -> tuple[str, str | None]:
    """The metric the jobs returned to the sweeper, and the sweeper's direction (None when
    no sweeper recorded one)."""
    metric = next((j.metric for j in jobs if j.metric), "d_loss")
    direction = next((j.direction for j in jobs if j.direction), None)
    return metric, direction


def choose_direction(metric: str, given: str | None) -> tuple[str, str]:
    """(direction, why): the one given (by the user or the sweeper), else the metric's own."""
    known = direction_of(metric)
    if given:
        return given, "as given" if not known or known[0] == given else "as given, " \
            f"though {metric} is usually {'minimised' if known[0] == 'minimize' else 'maximised'}"
    if known:
        return known
    return "minimize", f"{metric} has no known direction; pass direction= to choose"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def split_overrides(jobs: list[Job]) -> tuple[list[str], dict[str, object]]:
    """Override keys whose value differs between jobs, and those every job shares (all of
    them, for a single job)."""
    keys = list(dict.fromkeys(k for j in jobs for k in j.overrides))
    varying, shared = [], {}
    for key in keys:
        values = [j.overrides.get(key, "<unset>") for j in jobs]
        if all(v == values[0] for v in values):
            shared[key] = values[0]
        else:
            varying.append(key)
    return varying, shared


def metric_columns(jobs: list[Job], metric: str) -> list[str]:
    from gancli.training.logging import TAGS

    logged = list(dict.fromkeys(k for j in jobs for k in j.metrics if k != "step"))
    extra = [k for k in logged if k not in TAGS]  # evaluation metrics (fid, ...)
    ordered = [metric, *extra, *TABLE_METRICS]
    return [k for k in dict.fromkeys(ordered) if k in logged or k == metric]


def summary_table(jobs: list[Job], metric: str, direction: str, title: str) -> Table:
    varying, shared = split_overrides(jobs)
    caption = " ".join(f"{k}={_fmt(v)}" for k, v in shared.items())
    table = Table(title=title, caption=f"every job: {caption}" if caption else None)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("job", justify="right", no_wrap=True)
    table.add_column("overrides", overflow="fold")  # the keys that differ, one a line
    table.add_column("status", no_wrap=True)
    table.add_column("step", justify="right", no_wrap=True)
    columns = metric_columns(jobs, metric)
    arrow = "↓" if direction == "minimize" else "↑"
    for key in columns:
        table.add_column(f"{key} {arrow}" if key == metric else key, justify="right",
                         no_wrap=True, style="bold" if key == metric else None)
    for rank, job in enumerate(jobs, 1):
        overrides = "\n".join(f"{k}={_fmt(job.overrides[k])}" for k in varying
                              if k in job.overrides)
        table.add_row(str(rank), str(job.num), overrides, job.status,
                      _fmt(job.metrics.get("step")),
                      *(_fmt(job.metrics.get(k)) for k in columns))
    return table


def write_csv(jobs: list[Job], path: Path) -> Path:
    override_keys = list(dict.fromkeys(k for j in jobs for k in j.overrides))
    metric_keys = list(dict.fromkeys(k for j in jobs for k in j.metrics))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "job", "status", "path", *override_keys, *metric_keys])
        for rank, job in enumerate(jobs, 1):
            writer.writerow([rank, job.num, job.status, str(job.path),
                             *(job.overrides.get(k, "") for k in override_keys),
                             *(job.metrics.get(k, "") for k in metric_keys)])
    return path


@dataclass
class SeedGroup:
    """Jobs whose overrides differ only in `seed`: one setting, several seeds."""

    setting: dict[str, object]  # the overrides shared by the group, seed excluded
    jobs: list[Job]

    @property
    def seeds(self) -> list[object]:
        return [j.overrides.get(SEED_KEY) for j in self.jobs]

    def values(self, metric: str) -> list[float]:
        return [float(v) for j in self.jobs if isinstance(v := j.metrics.get(metric), (int, float))
                and not isinstance(v, bool) and math.isfinite(v)]

    def mean_sd(self, metric: str) -> tuple[float, float, int] | None:
        """Mean, sample standard deviation (n - 1; nan for one value) and count."""
        values = self.values(metric)
        if not values:
            return None
        mean = sum(values) / len(values)
        if len(values) == 1:
            return mean, float("nan"), 1
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        return mean, math.sqrt(var), len(values)


def seed_groups(jobs: list[Job]) -> list[SeedGroup]:
    """The jobs grouped by every override but `seed`, in the order the settings first appear;
    [] when no setting was run with more than one seed."""
    groups: dict[str, SeedGroup] = {}
    for job in jobs:
        setting = {k: v for k, v in job.overrides.items() if k != SEED_KEY}
        key = repr(sorted((k, repr(v)) for k, v in setting.items()))
        groups.setdefault(key, SeedGroup(setting, [])).jobs.append(job)
    found = list(groups.values())
    if not any(len(g.jobs) > 1 and len(set(map(repr, g.seeds))) > 1 for g in found):
        return []
    return found


def fmt_mean_sd(stats: tuple[float, float, int] | None) -> str:
    if stats is None:
        return ""
    mean, sd, n = stats
    return f"{mean:.4g}" if n == 1 else f"{mean:.4g} ± {sd:.2g}"


def seed_table(groups: list[SeedGroup], columns: list[str], metric: str,
               direction: str) -> Table:
    varying = [k for k in dict.fromkeys(k for g in groups for k in g.setting)
               if len({repr(g.setting.get(k, "<unset>")) for g in groups}) > 1]
    table = Table(title=f"{len(groups)} settings over seeds: mean ± sd (sample sd, n - 1), "
                        f"best {metric} first")
    table.add_column("setting", overflow="fold")
    table.add_column("seeds", justify="right")
    arrow = "↓" if direction == "minimize" else "↑"
    for key in columns:
        table.add_column(f"{key} {arrow}" if key == metric else key, justify="right",
                         style="bold" if key == metric else None)
    for group in groups:
        table.add_row("\n".join(f"{k}={_fmt(group.setting[k])}" for k in varying
                                if k in group.setting) or "(all)",
                      str(len(group.jobs)),
                      *(fmt_mean_sd(group.mean_sd(k)) for k in columns))
    return table


def rank_groups(groups: list[SeedGroup], metric: str, direction: str) -> list[SeedGroup]:
    sign = 1.0 if direction == "minimize" else -1.0

    def key(group: SeedGroup):
        stats = group.mean_sd(metric)
        return (1, 0.0) if stats is None else (0, sign * stats[0])

    return sorted(groups, key=key)


def write_seed_csv(groups: list[SeedGroup], columns: list[str], path: Path) -> Path:
    keys = list(dict.fromkeys(k for g in groups for k in g.setting))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*keys, "seeds", "n",
                         *(f"{c}_{s}" for c in columns for s in ("mean", "sd"))])
        for group in groups:
            stats = [group.mean_sd(c) for c in columns]
            writer.writerow([*(group.setting.get(k, "") for k in keys),
                             " ".join(map(str, group.seeds)), len(group.jobs),
                             *(x for st in stats for x in ((st[0], st[1]) if st else ("", "")))])
    return path


def summarize(sweep_dir: str | Path, metric: str | None = None, direction: str | None = None,
              console: Console | None = None) -> list[Job]:
    """Print the table for a sweep folder and write its summary.csv; return the ranked jobs."""
    sweep_dir = Path(sweep_dir)
    jobs = read_sweep(sweep_dir)
    default_name, sweeper_direction = default_metric(jobs)
    metric = metric or default_name
    logged = sorted({k for j in jobs for k in j.metrics if k != "step"})
    if logged and metric not in logged:
        raise GanError(f"metric '{metric}' is not logged by any job; choose one of: "
                       f"{', '.join(logged)}")
    direction, why = choose_direction(metric, direction or sweeper_direction)
    ranked = rank_jobs(jobs, metric, direction)
    write_csv(ranked, sweep_dir / CSV_NAME)
    if console is None:
        console = Console()
        if not console.is_terminal:  # a log file or pipe: no need to squeeze into 80 columns
            console = Console(width=160)
    console.print(f"sweep {sweep_dir}", soft_wrap=True)
    console.print(summary_table(ranked, metric, direction,
                                f"{len(jobs)} jobs, best {metric} first"))
    console.print(f"ranked by {metric}, {direction}d ({why})", soft_wrap=True,
                  highlight=False)
    console.print(f"written: {sweep_dir / CSV_NAME}", soft_wrap=True)
    groups = seed_groups(jobs)
    if groups:  # several seeds per setting: their mean and spread
        columns = metric_columns(jobs, metric)
        groups = rank_groups(groups, metric, direction)
        console.print(seed_table(groups, columns, metric, direction))
        write_seed_csv(groups, columns, sweep_dir / SEEDS_CSV_NAME)
        console.print(f"written: {sweep_dir / SEEDS_CSV_NAME}", soft_wrap=True)
    return ranked


# config keys every run's HParams entry carries (when set), so the runs of a sweep line up in
# TensorBoard's HParams tab: the chosen groups, then the main hyperparameters
HPARAM_KEYS = ("dataset.name", "model.name", "loss.name", "optimizer.name", "optimizer.lr",
               "optimizer.lr_g", "optimizer.lr_d", "train.batch_size", "train.steps",
               "train.n_critic", "model.z_dim", "seed")


def main_hparams(config: dict) -> dict[str, object]:
    """The chosen groups (as `dataset`, `model`, ... like their overrides) and the main
    hyperparameters of a resolved config; keys that are unset or null are left out."""
    out: dict[str, object] = {}
    for key in HPARAM_KEYS:
        value = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            out[key.removesuffix(".name")] = value
    return out


def write_hparams(run_dir: str | Path, overrides: list[str]) -> None:
    """Record this run's chosen groups, main hyperparameters (from .hydra/config.yaml), its
    overrides and its final metrics for TensorBoard's HParams tab."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir = Path(run_dir)
    record = _last_record(run_dir / "metrics.jsonl")
    metrics = {f"final/{k}": float(v) for k, v in record.items()
               if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
    if not metrics:
        return
    chosen = {**main_hparams(_load_yaml(run_dir / ".hydra" / "config.yaml") or {}),
              **parse_overrides(overrides)}
    hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
               for k, v in chosen.items()}
    with SummaryWriter(str(run_dir / "tb")) as writer:
        # run_name "." puts the entry in the run's own log folder, beside its curves
        writer.add_hparams(hparams, metrics, run_name=".")

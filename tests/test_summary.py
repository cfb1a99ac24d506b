"""The sweep summary: jobs read from a multirun folder, ranked best first, printed, written
as CSV, and each run's HParams entry for TensorBoard."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from gancli.errors import GanError
from gancli.summary import read_sweep, summarize, write_hparams
from tests.helpers import run_gan


def make_job(sweep: Path, num: int, overrides: list[str], final: dict | None,
             direction: str | None = None, steps: int = 100) -> Path:
    """A job folder as Hydra and `gan train` leave it."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump({"train": {"steps": steps, "metric": "d_loss"}}))
    sweeper = {"direction": direction} if direction else {}
    (job / ".hydra" / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"job": {"num": num}, "sweeper": sweeper}}))
    if final is not None:
        first = {**final, "step": final["step"] // 2, "d_loss": 9.0}
        (job / "metrics.jsonl").write_text(json.dumps(first) + "\n" + json.dumps(final) + "\n")
    return job


@pytest.fixture
def sweep(tmp_path) -> Path:
    s = tmp_path / "multirun"
    make_job(s, 0, ["model=mlp", "optimizer.lr=0.001"], {"step": 100, "d_loss": 0.9, "g_loss": 2.0})
    make_job(s, 1, ["model=mlp", "optimizer.lr=0.002"], {"step": 100, "d_loss": 0.5, "g_loss": 3.0})
    make_job(s, 2, ["model=mlp", "optimizer.lr=0.01"], None)  # failed before logging
    make_job(s, 3, ["model=mlp", "optimizer.lr=1e-4"], {"step": 40, "d_loss": 1.2, "g_loss": 1.0})
    return s


def test_jobs_are_read_with_typed_overrides_and_final_metrics(sweep):
    jobs = read_sweep(sweep)
    assert [j.num for j in jobs] == [0, 1, 2, 3]
    assert jobs[0].overrides == {"model": "mlp", "optimizer.lr": 0.001}
    assert jobs[1].metrics["d_loss"] == 0.5  # the last line, not the first
    assert [j.status for j in jobs] == ["done", "done", "no metrics", "stopped"]


def test_best_first_in_either_direction_and_unlogged_jobs_last(sweep):
    lowest = summarize(sweep, direction="minimize", console=None)
    assert [j.num for j in lowest] == [1, 0, 3, 2]  # train.metric d_loss
    highest = summarize(sweep, metric="g_loss", direction="maximize")
    assert [j.num for j in highest] == [1, 0, 3, 2]
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert [r["job"] for r in rows] == ["1", "0", "3", "2"]
    assert rows[0]["optimizer.lr"] == "0.002" and rows[0]["g_loss"] == "3.0"
    assert rows[3]["status"] == "no metrics" and rows[3]["d_loss"] == ""


def test_direction_comes_from_the_optuna_sweeper(tmp_path):
    s = tmp_path / "optuna"
    make_job(s, 0, ["optimizer.lr=0.1"], {"step": 1, "d_loss": 0.2}, direction="maximize")
    make_job(s, 1, ["optimizer.lr=0.2"], {"step": 1, "d_loss": 0.7}, direction="maximize")
    assert [j.num for j in summarize(s)] == [1, 0]


def test_gan_summary_prints_the_table(sweep):
    out = run_gan("summary", str(sweep), "metric=g_loss", cwd=sweep.parent)
    assert out.returncode == 0, out.stderr
    assert "4 jobs, best g_loss first" in out.stdout
    lines = [line for line in out.stdout.splitlines() if "optimizer.lr=" in line]
    assert [line.split("optimizer.lr=")[1].split()[0] for line in lines] == [
        "0.0001", "0.001", "0.002", "0.01"]
    assert "every job: model=mlp" in out.stdout  # shared overrides go to the caption


@pytest.mark.parametrize("args, message", [
    (["nowhere"], "no such sweep folder"),
    ([".", "direction=up"], "direction must be one of"),
    ([], "usage: gan summary"),
])
def test_gan_summary_errors_are_one_line(sweep, args, message):
    if args[:1] == ["."]:
        args = [str(sweep), *args[1:]]
    out = run_gan("summary", *args, cwd=sweep.parent)
    assert out.returncode == 1 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_an_empty_folder_is_not_a_sweep(tmp_path):
    with pytest.raises(GanError, match="holds no jobs"):
        read_sweep(tmp_path)


def test_hparams_entry_lists_overrides_and_final_metrics(sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    job = sweep / "1"
    write_hparams(job, ["model=mlp", "optimizer.lr=0.002"])
    events = EventAccumulator(str(job / "tb"))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["optimizer.lr"].number_value == pytest.approx(0.002)
    assert hparams["model"].string_value == "mlp"
    assert events.Scalars("final/d_loss")[0].value == pytest.approx(0.5)


def test_a_single_run_dir_is_summarised(tmp_path):
    run = tmp_path / "run"
    make_job(tmp_path, 0, ["model=mlp"], {"step": 100, "d_loss": 1.1})
    (tmp_path / "0").rename(run)
    hydra = yaml.safe_load((run / ".hydra" / "hydra.yaml").read_text())
    hydra["hydra"]["job"]["num"] = "???"  # as Hydra writes it for a run outside a sweep
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    out = run_gan("summary", str(run), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 jobs, best d_loss first" in out.stdout


def test_an_unlogged_metric_is_one_line_naming_the_logged_ones(sweep):
    out = run_gan("summary", str(sweep), "metric=foo", cwd=sweep.parent)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "metric 'foo' is not logged by any job; choose one of: d_loss, g_loss" in out.stderr


def test_each_metric_ranks_in_its_own_direction_and_says_so(tmp_path, capsys):
    s = tmp_path / "fid"
    for num, fid in enumerate([30.0, 10.0, 20.0]):
        job = make_job(s, num, [f"seed={num}"], {"step": 100, "d_loss": 1.0, "mnist_fid": fid})
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
            {"train": {"steps": 100, "metric": None, "eval_every": 50,
                       "eval_metric": "mnist_fid"}, "model": {"name": "dcgan"}}))
        # what Hydra saves for the Optuna config's direction: the interpolation, unresolved
        (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {
            "job": {"num": num}, "sweeper": {"direction": "${gancli_direction:a,b,c,d}"}}}))
    assert [j.num for j in summarize(s)] == [1, 2, 0]  # fid: lower is better
    assert "ranked by mnist_fid, minimized (sample quality" in capsys.readouterr().out


def test_optuna_direction_follows_the_metric_and_a_resumed_study_draws_new_trials(tmp_path):
    import optuna

    from gancli.directions import _direction_resolver, _study_seed_resolver
    from tests.helpers import compose_config  # noqa: F401  (registers the resolvers)

    assert _direction_resolver(None, 0, "fid", "mlp") == "maximize"  # d_loss: a proxy
    assert _direction_resolver(None, 500, "mnist_fid", "dcgan") == "minimize"
    assert _direction_resolver(None, 0, "fid", "vae") == "minimize"  # the VAE's loss
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert _study_seed_resolver(storage, "s", 0) == 0  # a new study: reproducible
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    assert _study_seed_resolver(storage, "s", 0) == 3
    assert _study_seed_resolver(None, "s", 0) == 0


def test_the_optuna_config_resolves_direction_and_seed(tmp_path):
    from hydra import compose, initialize_config_module

    import gancli.config  # noqa: F401  (registers the resolvers)

    with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hparams_search=grid25_optuna"],
                      return_hydra_config=True)
    assert cfg.hydra.sweeper.direction == "maximize"  # mlp on grid25: d_loss
    assert cfg.hydra.sweeper.sampler.seed == 0


def test_jobs_differing_only_in_seed_are_grouped_with_mean_and_sd(tmp_path):
    from rich.console import Console

    s = tmp_path / "seeds"
    losses = {("0.001", 1): 0.5, ("0.001", 2): 0.7, ("0.001", 3): 0.9,
              ("0.01", 1): 0.2, ("0.01", 2): 0.4}
    for num, ((lr, seed), loss) in enumerate(losses.items()):
        make_job(s, num, ["model=mlp", f"optimizer.lr={lr}", f"seed={seed}"],
                 {"step": 100, "d_loss": loss, "g_loss": 1.0})
    console = Console(width=200, record=True)
    summarize(s, direction="minimize", console=console)
    text = console.export_text()
    assert "2 settings over seeds: mean ± sd" in text
    assert "0.3 ± 0.14" in text and "0.7 ± 0.2" in text  # best d_loss first
    assert text.index("0.3 ± 0.14") < text.index("0.7 ± 0.2")
    rows = list(csv.DictReader(open(s / "summary_seeds.csv")))
    assert [r["optimizer.lr"] for r in rows] == ["0.01", "0.001"]
    assert rows[1]["n"] == "3" and rows[1]["seeds"] == "1 2 3"
    assert float(rows[1]["d_loss_mean"]) == pytest.approx(0.7)
    assert float(rows[1]["d_loss_sd"]) == pytest.approx(0.2)


def test_a_sweep_without_repeated_seeds_prints_no_seed_table(sweep):
    from rich.console import Console

    console = Console(width=200, record=True)
    summarize(sweep, console=console)
    assert "over seeds" not in console.export_text()
    assert not (sweep / "summary_seeds.csv").exists()


def test_hparams_entry_carries_the_chosen_groups_and_main_hyperparameters(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({
        "dataset": {"name": "mnist5k"}, "model": {"name": "dcgan", "z_dim": 100},
        "loss": {"name": "hinge"}, "optimizer": {"name": "adam", "lr": 2e-4, "lr_g": None},
        "train": {"batch_size": 64, "steps": 300, "n_critic": 1}, "seed": 3}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 300, "d_loss": 1.5}) + "\n"
                                       + json.dumps({"step": 300, "mnist_fid": 4.0}) + "\n")
    write_hparams(run, ["loss=hinge", "seed=3"])
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert {k: (v.string_value or v.number_value) for k, v in hparams.items()} == {
        "dataset": "mnist5k", "model": "dcgan", "loss": "hinge", "optimizer": "adam",
        "optimizer.lr": pytest.approx(2e-4), "train.batch_size": 64, "train.steps": 300,
        "train.n_critic": 1, "model.z_dim": 100, "seed": 3}
    assert events.Scalars("final/mnist_fid")[0].value == pytest.approx(4.0)
    assert events.Scalars("final/d_loss")[0].value == pytest.approx(1.5)

"""Sweeps through Hydra's plugins: Optuna's Bayesian search, parallel jobs with joblib, and the
Slurm job spec submitit writes (checked without a cluster)."""

from __future__ import annotations

import csv
import os
import pickle
import stat
from pathlib import Path

import pytest
import yaml

from tests.helpers import run_gan

GRID = ["dataset=grid25", "dataset.size=4096", "device=cpu", "train.steps=6",
        "train.batch_size=64", "train.log_every=3", "train.sample_every=6", "train.ckpt_every=6",
        "train.num_samples=16"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def summary_rows(sweep: Path) -> list[dict]:
    with open(sweep / "summary.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_optuna_search_on_grid25_ends_with_a_three_row_summary(tmp_path):
    out = run_gan("train", "-m", "hparams_search=grid25_optuna", "hydra.sweeper.n_trials=3",
                  *GRID, "hydra.sweep.dir=sweep", cwd=tmp_path, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    sweep = tmp_path / "sweep"
    rows = summary_rows(sweep)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"done"}
    assert "3 jobs, best d_loss first" in out.stdout
    assert "ranked by d_loss, maximized" in out.stdout  # the direction Optuna used too
    # the search space in conf/hparams_search/grid25_optuna.yaml was sampled, one value a trial
    assert len({r["optimizer.lr"] for r in rows}) == 3
    assert all(1e-5 <= float(r["optimizer.lr"]) <= 1e-2 for r in rows)
    # best first: the search maximises d_loss, and Optuna's best is the table's first row
    values = [float(r["d_loss"]) for r in rows]
    assert values == sorted(values, reverse=True)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(values[0])
    for row in rows:  # each trial recorded its HParams entry for TensorBoard
        assert hparams_of(tmp_path / row["path"])["optimizer.lr"].number_value == \
            pytest.approx(float(row["optimizer.lr"]))


@pytest.mark.slow
def test_a_resumed_optuna_study_draws_new_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    lrs = []
    for sweep in ("first", "resumed"):
        out = run_gan("train", "-m", "hparams_search=grid25_optuna", "hydra.sweeper.n_trials=2",
                      *GRID, f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={sweep}",
                      cwd=tmp_path, env=ONE_THREAD)
        assert out.returncode == 0, out.stderr[-3000:]
        lrs.append({r["optimizer.lr"] for r in summary_rows(tmp_path / sweep)})
    assert len(lrs[1]) == 2 and not lrs[0] & lrs[1]  # seed 0 again would repeat both


def hparams_of(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams


@pytest.mark.slow
def test_joblib_runs_jobs_in_parallel_processes(tmp_path):
    out = run_gan("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                  "model=mlp", *GRID, "optimizer.lr=1e-3,2e-3", "hydra.sweep.dir=sweep",
                  cwd=tmp_path, env=ONE_THREAD)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = summary_rows(tmp_path / "sweep")
    assert sorted(r["optimizer.lr"] for r in rows) == ["0.001", "0.002"]
    assert "Joblib.Parallel(n_jobs=2" in out.stderr + out.stdout


def fake_slurm(bin_dir: Path) -> None:
    """`sbatch` that keeps the job script it is given and refuses it; `srun` submitit only
    looks for on PATH."""
    bin_dir.mkdir()
    scripts = {"sbatch": '#!/bin/sh\ncp "$1" "$SBATCH_CAPTURE"\n'
                         'echo "sbatch: error: no cluster here" >&2\nexit 1\n',
               "srun": "#!/bin/sh\nexit 1\n"}
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)


def test_slurm_launcher_writes_the_job_array_spec(tmp_path):
    fake_slurm(tmp_path / "bin")
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "SBATCH_CAPTURE": str(tmp_path / "job.sh")}
    out = run_gan("train", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                  "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4",
                  "model=mlp", *GRID, "optimizer.lr=1e-3,2e-3,5e-3", "hydra.sweep.dir=sweep",
                  cwd=tmp_path, env=env)
    assert out.returncode != 0 and "no cluster here" in out.stderr  # submission refused
    script = (tmp_path / "job.sh").read_text()
    for line in ["#SBATCH --array=0-2%3", "#SBATCH --partition=gpu",
                 "#SBATCH --gpus-per-node=4", "#SBATCH --ntasks-per-node=4",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=32GB", "#SBATCH --time=1440",
                 "#SBATCH --job-name=train", "export SUBMITIT_EXECUTOR=slurm"]:
        assert line in script.splitlines(), line
    assert "-m submitit.core._submit" in script.splitlines()[-1]
    # one pickled job per array task, each with its own overrides
    jobs = [pickle.loads(p.read_bytes()) for p in (tmp_path / "sweep" / ".submitit").glob("*.pkl")]
    overrides = sorted(o for job in jobs for o in job.args[0] if o.startswith("optimizer.lr="))
    assert overrides == ["optimizer.lr=0.001", "optimizer.lr=0.002", "optimizer.lr=0.005"]

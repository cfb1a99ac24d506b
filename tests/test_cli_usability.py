"""Issue 19's reproductions: ordinary mistakes are one line with status 1, paths expand `~`
and variables, a run says where it goes and what it used (console and train.log), a run that
fails before its first step leaves no folder, and the thread default."""

from __future__ import annotations

import os
import shutil

import pytest

from gancli.errors import ConfigError, GanError
from tests.helpers import TINY, run_gan


def _one_line_error(out, needle):
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert needle in out.stderr, out.stderr


@pytest.mark.parametrize("target", ["/proc/x.png", "/proc/x.npz", "/proc/x/"])
def test_sample_to_an_unwritable_place_is_one_line(tiny_run, tmp_path, target):
    out = run_gan("sample", f"ckpt={tiny_run}", f"out={target}", cwd=tmp_path)
    _one_line_error(out, f"cannot write out={target.rstrip('/')}")


def test_sample_paths_expand_home_and_variables(tiny_run, tmp_path):
    env = {"HOME": str(tmp_path), "RUN": str(tiny_run)}
    out = run_gan("sample", "ckpt=$RUN", "n=4", "out=~/grid.png", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "grid.png").is_file()


def test_eval_to_an_unwritable_place_fails_before_computing(tiny_run, tmp_path):
    out = run_gan("eval", f"ckpt={tiny_run}", "extractor=mnist", "n=20", "out=/proc/x.json",
                  cwd=tmp_path)
    _one_line_error(out, "cannot write out=/proc/x.json")


def test_eval_prints_its_table_before_writing(tiny_run, tmp_path, monkeypatch, capsys):
    """Should writing fail anyway (the disk fills up), the metrics were shown first."""
    import gancli.metrics.evaluate as evaluate
    from gancli.cli import main

    monkeypatch.setattr(evaluate, "check_writable", lambda *a, **k: None)
    with pytest.raises(SystemExit) as stop:
        main(["eval", f"ckpt={tiny_run}", "extractor=mnist", "n=20", "device=cpu",
              "out=/proc/x.json", f"cache_dir={tmp_path}"])
    assert stop.value.code == 1
    captured = capsys.readouterr()
    assert "mnist_fid" in captured.out
    assert captured.err.strip().startswith("error: cannot write out=/proc/x.json")


def test_a_slurm_launcher_without_slurm_is_one_line(tmp_path):
    if shutil.which("sbatch"):
        pytest.skip("Slurm is installed here")
    out = run_gan("train", "-m", "hydra/launcher=slurm", "seed=1,2", cwd=tmp_path)
    _one_line_error(out, "hydra/launcher=slurm submits each job with Slurm's sbatch")
    assert not (tmp_path / "outputs").exists()


def test_the_readme_folder_example_expands_home(tmp_path):
    """`dataset.root=~/faces` got past Hydra's lexer and means $HOME/faces."""
    out = run_gan("train", "dataset=folder", "dataset.root=~/faces", cwd=tmp_path,
                  env={"HOME": str(tmp_path)})
    _one_line_error(out, f"{tmp_path / 'faces'} does not exist")


def test_a_run_that_fails_before_its_first_step_leaves_no_folder(tmp_path):
    out = run_gan("train", "dataset=cifar10", "dataset.root=nowhere", "dataset.download=false",
                  cwd=tmp_path)
    _one_line_error(out, "dataset 'cifar10' not found")
    assert not list(tmp_path.rglob(".hydra"))
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").iterdir())


def test_remove_if_unstarted_keeps_a_folder_with_anything_else(tmp_path):
    from gancli.cli import remove_if_unstarted

    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints").mkdir()
    remove_if_unstarted(tmp_path / "run")
    assert (tmp_path / "run" / ".hydra").is_dir()
    (tmp_path / "run" / "checkpoints").rmdir()
    (tmp_path / "run" / "train.log").write_text("")
    remove_if_unstarted(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_run_says_where_it_goes_and_logs_it_to_train_log(tmp_path):
    run = tmp_path / "run"
    out = run_gan("train", *TINY, "device.threads=1", f"hydra.run.dir={run}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for needle in (f"run         {run}\n", "cpu, 1 CPU threads", "dataset=mnist5k model=dcgan",
                   "parameters  G ", "D ", f"gan train resume={run}\n",
                   f"checkpoint    {run / 'checkpoints' / 'last.pt'}\n", "train.metric  d_loss"):
        assert needle in out.stderr, (needle, out.stderr)
    log = (run / "train.log").read_text()
    for needle in (f"run: {run}", "parameters: G ", "step 4/4 d_loss=", "final: step 4",
                   f"checkpoint: {run / 'checkpoints' / 'last.pt'}"):
        assert needle in log, (needle, log)
    assert (run / "reals.png").is_file()


def test_reals_png_holds_the_training_images(tmp_path):
    from PIL import Image

    from gancli.data import build_dataset
    from gancli.training.report import write_reals
    from tests.helpers import compose_config

    cfg = compose_config(TINY)
    path = write_reals(build_dataset(cfg.dataset), tmp_path, 16, 0)
    assert Image.open(path).size == (4 * 30 + 2, 4 * 30 + 2)  # 4x4 grid of 28px, padding 2
    points = build_dataset(compose_config([*TINY, "dataset=ring8", "model=mlp"]).dataset)
    assert write_reals(points, tmp_path / "p", 16, 0) is None  # scatter plots show the data


def test_threads_auto_uses_the_available_cores_and_numbers_are_checked(monkeypatch):
    from gancli.config import DeviceConfig
    from gancli.devices import available_cores, resolve_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's own setting wins
    assert resolve_threads("auto") == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert resolve_threads(DeviceConfig().threads) == available_cores()
    assert resolve_threads(DeviceConfig(threads=None).threads) == available_cores()
    assert resolve_threads(DeviceConfig(threads="3").threads) == 3
    for bad in ("0", "many"):
        with pytest.raises(ConfigError, match="device.threads"):
            DeviceConfig(threads=bad)


def test_passive_openmp_wait_is_set_before_torch_loads_unless_given(monkeypatch):
    from gancli.cli import main

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    main(["--help"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    main(["--help"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_one_thread_per_job_under_a_parallel_launcher():
    from omegaconf import OmegaConf

    from gancli.cli import _parallel_launcher

    def hydra(mode, target):
        return OmegaConf.create({"mode": mode, "launcher": {"_target_": target}})

    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    assert _parallel_launcher(hydra("RunMode.MULTIRUN", joblib))
    assert not _parallel_launcher(hydra("RunMode.MULTIRUN", basic))
    assert not _parallel_launcher(hydra("RunMode.RUN", joblib))


def test_gan_error_is_the_base_of_path_errors():
    from gancli.paths import check_writable

    with pytest.raises(GanError, match="is a folder"):
        check_writable(os.getcwd(), "out")


def test_the_cli_module_does_not_load_torch_so_the_wait_policy_applies(tmp_path):
    import subprocess
    import sys

    code = "import sys, gancli.cli; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path).returncode == 0

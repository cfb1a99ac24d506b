"""gan eval --gan-train / --gan-test on a tiny class-conditional run."""

import json

import pytest

from gancli.errors import ConfigError
from tests.helpers import TINY, compose_config, run_gan


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    from gancli.training.loop import train

    run_dir = tmp_path_factory.mktemp("cgan_run")
    train(compose_config([*TINY, "model=cgan", "device.threads=1", "dataset.holdout=100",
                          "dataset.split_seed=1234"]), run_dir)
    return run_dir


def test_gan_train_and_gan_test_report_accuracies(cgan_run):
    from gancli.metrics.gan_train import GanTrainArgs, run_gan_train_test

    result = run_gan_train_test(GanTrainArgs(ckpt=str(cgan_run), n=64, epochs=1,
                                             device="cpu"), gan_train=True, gan_test=True)
    m = result["metrics"]
    assert set(m) == {"gan_train_accuracy", "real_train_accuracy", "gan_test_accuracy"}
    assert all(0.0 <= v <= 1.0 for v in m.values())
    assert result["n_generated"] == 64 and result["n_real_train"] == 64
    assert result["n_test_real"] == 1000 and result["gan_saw_test_digits"] is False


def test_gan_test_from_the_command_line_writes_json(cgan_run, tmp_path):
    done = run_gan("eval", f"ckpt={cgan_run}", "--gan-test", "n=50", "out=g.json",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "GAN-test" in done.stdout and "never saw the test digits" in done.stdout
    result = json.loads((tmp_path / "g.json").read_text())
    assert list(result["metrics"]) == ["gan_test_accuracy"]


def test_gan_train_needs_a_conditional_model(tiny_run, tmp_path):
    done = run_gan("eval", f"ckpt={tiny_run}", "--gan-train", cwd=tmp_path)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "need a class-conditional model" in done.stderr


def test_bad_arguments_are_config_errors():
    from gancli.metrics.gan_train import GanTrainArgs

    with pytest.raises(ConfigError, match="epochs must be > 0"):
        GanTrainArgs(epochs=0)

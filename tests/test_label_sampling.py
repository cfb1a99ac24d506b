"""Training runs of the label and code families end to end (tiny, random-quality networks: these
test wiring), checkpoints that rebuild them alone, and `gan sample` with label= and traverse=."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gancli.errors import ConfigError
from gancli.sampling import SampleArgs, generate, load_gan, run_sample
from gancli.training.loop import train
from tests.helpers import TINY, compose_config, run_gan

CELL = 28 + 2  # a 28x28 digit and the grid's padding


def _train(tmp_path_factory, name, extra):
    run_dir = tmp_path_factory.mktemp(name)
    train(compose_config([*TINY, "device.threads=1", *extra]), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    return _train(tmp_path_factory, "cgan", ["model=cgan"])


@pytest.fixture(scope="module")
def infogan_run(tmp_path_factory):
    return _train(tmp_path_factory, "infogan", ["model=infogan", "model.categorical=[10,4]",
                                                 "model.continuous=2"])


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_extra_terms_are_logged_with_the_losses(cgan_run, infogan_run):
    assert "d_class_real" not in _records(cgan_run)[0]  # cgan has no extra terms
    record = _records(infogan_run)[0]
    assert {"d_info_cat", "d_info_cont", "g_info_cat", "g_info_cont"} <= set(record)


def test_label_fixes_the_class_of_every_sample(cgan_run, tmp_path):
    out = tmp_path / "threes.npz"
    run_sample(SampleArgs(ckpt=str(cgan_run), n=12, label=3, out=str(out), device="cpu"))
    arrays = np.load(out)
    assert arrays["samples"].shape == (12, 1, 28, 28) and (arrays["labels"] == 3).all()
    # the same noise as without label=: only the class changed
    gan, _ = load_gan(cgan_run, torch.device("cpu"))
    free, labels = generate(gan, 12, torch.device("cpu"), seed=0, batch_size=256)
    same = labels == 3
    assert torch.allclose(torch.from_numpy(arrays["samples"])[same], free[same], atol=1e-6)


def test_conditional_png_grid_has_a_row_per_class(cgan_run, tmp_path):
    out = tmp_path / "grid.png"
    run_sample(SampleArgs(ckpt=str(cgan_run), n=30, out=str(out), device="cpu"))
    assert Image.open(out).size == (3 * CELL + 2, 10 * CELL + 2)  # 10 classes x 30 // 10


def test_label_for_a_folder_of_pngs(cgan_run, tmp_path):
    run_sample(SampleArgs(ckpt=str(cgan_run), n=5, label=9, out=str(tmp_path / "nines") + "/",
                          device="cpu"))
    assert len(list((tmp_path / "nines").glob("*.png"))) == 5


@pytest.mark.parametrize("label,message", [(10, "label must be in 0..9, got 10"),
                                           (-1, "label must be in 0..9, got -1")])
def test_label_out_of_range(cgan_run, label, message):
    with pytest.raises(ConfigError, match=message):
        run_sample(SampleArgs(ckpt=str(cgan_run), label=label, device="cpu"))


def test_label_needs_a_conditional_model(infogan_run):
    with pytest.raises(ConfigError, match="label=2 needs a class-conditional model"):
        run_sample(SampleArgs(ckpt=str(infogan_run), label=2, device="cpu"))


def test_traverse_a_categorical_and_a_continuous_code(infogan_run, tmp_path):
    run_sample(SampleArgs(ckpt=str(infogan_run), traverse="c1", rows=3,
                          out=str(tmp_path / "c1.png"), device="cpu"))
    assert Image.open(tmp_path / "c1.png").size == (10 * CELL + 2, 3 * CELL + 2)
    run_sample(SampleArgs(ckpt=str(infogan_run), traverse="c2", rows=2,
                          out=str(tmp_path / "c2.png"), device="cpu"))
    assert Image.open(tmp_path / "c2.png").size == (4 * CELL + 2, 2 * CELL + 2)  # 4 values
    run_sample(SampleArgs(ckpt=str(infogan_run), traverse="c4", rows=2, steps=6,
                          out=str(tmp_path / "c4.png"), device="cpu"))
    assert Image.open(tmp_path / "c4.png").size == (6 * CELL + 2, 2 * CELL + 2)


def test_traverse_errors(infogan_run, cgan_run, tmp_path):
    with pytest.raises(ConfigError, match="codes are c1, c2, c3, c4"):
        run_sample(SampleArgs(ckpt=str(infogan_run), traverse="z1", device="cpu"))
    with pytest.raises(ConfigError, match="traverse= needs a model with latent codes"):
        run_sample(SampleArgs(ckpt=str(cgan_run), traverse="c1", device="cpu"))
    with pytest.raises(ConfigError, match="traverse= writes a .png grid"):
        run_sample(SampleArgs(ckpt=str(infogan_run), traverse="c1",
                              out=str(tmp_path / "x.npz"), device="cpu"))


def test_sample_from_the_command_line(cgan_run, infogan_run, tmp_path):
    ckpt = cgan_run / "checkpoints" / "last.pt"
    done = run_gan("sample", f"ckpt={ckpt}", "label=3", "n=4", "out=three.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (np.load(tmp_path / "three.npz")["labels"] == 3).all()
    done = run_gan("sample", f"ckpt={infogan_run}", "traverse=c7", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: traverse=c7: this InfoGAN's codes are c1, c2, c3, c4 (c1..c2 categorical, "
        "then continuous)"]


def test_unlabeled_dataset_fails_before_training_in_one_line(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), color=(i * 60, 0, 0)).save(images / f"{i}.png")
    done = run_gan("train", "model=cgan", "dataset=folder", f"dataset.root={images}",
                   "device=cpu", "train.batch_size=4", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: model cgan needs class labels, but dataset folder has none; use a labeled "
        "dataset (mnist5k, digits, mnist, fashion_mnist, cifar10, ring8, grid25, or folder "
        "with one subfolder per class)"]
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.pt"))


def test_sgan_reports_test_and_baseline_accuracy(tmp_path):
    train(compose_config([*TINY, "device.threads=1", "model=sgan", "dataset.holdout=5",
                          "dataset.labeled=2", "dataset.labeled_per_batch=4",
                          "model.baseline=true", "model.baseline_steps=3"]), tmp_path)
    reports = [r for r in _records(tmp_path) if "test_acc" in r]
    assert [r["step"] for r in reports] == [2, 4]  # with every sample export
    assert all(0 <= r["test_acc"] <= 1 and 0 <= r["baseline_acc"] <= 1 for r in reports)
    assert reports[0]["baseline_acc"] == reports[1]["baseline_acc"]  # trained once
    losses = [r for r in _records(tmp_path) if "d_loss" in r]
    assert all("d_supervised" in r and "g_feature_matching" in r for r in losses)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert {"eval/test_acc", "eval/baseline_acc"} <= set(events.Tags()["scalars"])


def test_sgan_resumes_exactly_though_it_reports(tmp_path):
    """The report (held-out accuracy, baseline training) draws nothing from the run's random
    streams: a run stopped and resumed ends with the same weights as one straight run."""
    common = [*TINY, "device.threads=1", "model=sgan", "dataset.holdout=5", "dataset.labeled=2",
              "dataset.labeled_per_batch=4", "model.baseline=true", "model.baseline_steps=2"]
    train(compose_config(common), tmp_path / "straight")
    train(compose_config([*common, "train.steps=2"]), tmp_path / "split")
    train(compose_config([*common, f"resume={tmp_path / 'split'}"]), tmp_path / "split")
    a = torch.load(tmp_path / "straight/checkpoints/last.pt", weights_only=True)
    b = torch.load(tmp_path / "split/checkpoints/last.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key

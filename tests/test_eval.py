"""`gan eval` end to end with the offline MNIST classifier as extractor (fast on a CPU):
sources, results file, cache reuse, defaults and one-line errors. The Inception path and its
agreement with pytorch-fid are in test_eval_fid.py."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from gancli.cli import main
from gancli.errors import ConfigError, GanError
from gancli.metrics import cache
from gancli.metrics.evaluate import EvalArgs, class_coverage, run_eval
from gancli.metrics.sources import DatasetSource
from gancli.sampling import SampleArgs, run_sample
from tests.helpers import run_gan

MNIST = {"extractor": "mnist", "device": "cpu", "num_workers": 0}


def evaluate(**kwargs) -> dict:
    return run_eval(EvalArgs(**{**MNIST, **kwargs}))


@pytest.mark.slow  # a subprocess: imports torch, trains nothing, evaluates 240 images
def test_eval_a_checkpoint_against_its_dataset_from_the_command_line(tiny_run, tmp_path):
    ckpt = tiny_run / "checkpoints" / "last.pt"
    out = run_gan("eval", f"ckpt={ckpt}", "--fid", "--kid", "--is", "--pr", "extractor=mnist",
                  "n=120", "kid_subset_size=50", "out=m.json", f"cache_dir={tmp_path / 'c'}",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "m.json").read_text())
    metrics = result["metrics"]
    assert {"mnist_fid", "mnist_kid", "mnist_kid_std", "mnist_is", "mnist_is_std",
            "mnist_precision", "mnist_recall", "mnist_class_fractions",
            "mnist_classes_covered"} == set(metrics)
    assert metrics["mnist_fid"] > 0 and 0 <= metrics["mnist_precision"] <= 1
    assert sum(metrics["mnist_class_fractions"]) == pytest.approx(1)
    assert result["n_real"] == result["n_fake"] == 120
    assert result["real"]["kind"] == "dataset"
    assert result["real"]["config"]["name"] == "mnist5k"  # the run's own dataset
    assert result["fake"]["kind"] == "checkpoint" and result["fake"]["step"] == 4
    assert result["protocol"]["kid"]["subset_size"] == 50
    assert result["protocol"]["pr"]["k"] == 3
    assert "28x28" in result["resize"] and "classifier" in result["extractor"]
    # the table on stdout carries the same fields
    for text in ("mnist_fid", "real images", "fake images", "extractor", "resize", "120"):
        assert text in out.stdout


def test_second_eval_reuses_the_cached_real_statistics(tiny_run, tmp_path, monkeypatch):
    args = {"ckpt": str(tiny_run), "n": 100, "cache_dir": str(tmp_path), "metrics": ["fid"]}
    first = evaluate(**args)
    assert not first["real_stats"]["reused"]
    assert (tmp_path / "real_stats").is_dir()

    def no_reading(self, batch_size):
        raise AssertionError("the real images were read again")

    monkeypatch.setattr(DatasetSource, "batches", no_reading)
    second = evaluate(**args)
    assert second["real_stats"]["reused"]
    assert second["real_stats"]["cache"] == first["real_stats"]["cache"]
    assert second["metrics"] == first["metrics"]
    with pytest.raises(AssertionError, match="read again"):  # another count: another key
        evaluate(**{**args, "n": 90})


def test_cache_key_covers_dataset_split_count_and_extractor():
    source = {"kind": "dataset", "config": {"name": "mnist", "split": "train"}, "used": 100}
    protocol = {"extractor": "x", "weights_sha256": "aa", "resize": "bilinear",
                "weights": "/some/path"}
    key = cache.cache_key(source, protocol)
    changed = [
        {**source, "config": {"name": "mnist", "split": "test"}},
        {**source, "config": {"name": "fashion_mnist", "split": "train"}},
        {**source, "used": 200},
    ]
    assert all(cache.cache_key(s, protocol) != key for s in changed)
    assert cache.cache_key(source, {**protocol, "weights_sha256": "bb"}) != key
    assert cache.cache_key(source, {**protocol, "resize": "bicubic"}) != key
    # where the same weights file lives does not matter
    assert cache.cache_key(source, {**protocol, "weights": "/elsewhere"}) == key


def test_checkpoint_png_folder_and_npz_give_the_same_result(tiny_run, tmp_path):
    run_sample(SampleArgs(ckpt=str(tiny_run), n=40, out=f"{tmp_path / 'pngs'}/", seed=5,
                          batch_size=16, device="cpu"))
    run_sample(SampleArgs(ckpt=str(tiny_run), n=40, out=str(tmp_path / "s.npz"), seed=5,
                          batch_size=16, device="cpu"))
    common = {"real": "mnist5k", "n": 40, "seed": 5, "batch_size": 16,
              "cache_dir": str(tmp_path / "c"), "metrics": ["fid"]}
    by_ckpt = evaluate(fake=str(tiny_run / "checkpoints" / "last.pt"), **common)
    by_folder = evaluate(fake=str(tmp_path / "pngs"), **common)
    by_npz = evaluate(fake=str(tmp_path / "s.npz"), **common)
    assert by_ckpt["metrics"]["mnist_fid"] == by_npz["metrics"]["mnist_fid"]
    # PNGs come back as RGB; grey = the mean of 3 equal channels, equal up to rounding
    assert by_folder["metrics"]["mnist_fid"] == pytest.approx(by_ckpt["metrics"]["mnist_fid"],
                                                              rel=1e-6)
    assert by_folder["metrics"]["mnist_class_fractions"] == \
        by_ckpt["metrics"]["mnist_class_fractions"]


def test_real_and_fake_the_same_folder_scores_zero_and_full_coverage(tmp_path):
    from gancli.data.embedded import load_mnist5k

    images, _ = load_mnist5k()
    for i in range(60):
        Image.fromarray(images[i, 0].numpy()).save(tmp_path / f"{i:03d}.png")
    result = evaluate(real=str(tmp_path), fake=str(tmp_path), metrics=["fid", "pr"],
                      cache_dir=str(tmp_path / "c"))
    assert abs(result["metrics"]["mnist_fid"]) < 1e-6
    assert result["metrics"]["mnist_precision"] == result["metrics"]["mnist_recall"] == 1.0
    assert result["real"]["kind"] == "folder" and result["real"]["files"] == 60


def test_latest_run_under_outputs_is_the_default(tiny_run, tmp_path, monkeypatch):
    run = tmp_path / "outputs" / "2024-01-01" / "00-00-00_x"
    shutil.copytree(tiny_run / "checkpoints", run / "checkpoints")
    monkeypatch.chdir(tmp_path)
    result = evaluate(n=20, cache_dir=str(tmp_path / "c"))
    assert result["fake"]["path"] == str((run / "checkpoints" / "last.pt").resolve())


def test_no_run_and_no_sources_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GanError, match="ckpt=PATH"):
        evaluate()


def test_class_coverage_counts_classes_with_half_a_fair_share():
    logits = np.eye(10)[[0] * 50 + [1] * 30 + [2] * 4 + [3] * 16]
    cov = class_coverage(logits)
    assert cov["mnist_class_fractions"][:4] == [0.5, 0.3, 0.04, 0.16]
    assert cov["mnist_classes_covered"] == 3  # class 2 has 4% < 5%


@pytest.mark.parametrize("args, message", [
    ({"fake": "x.npz"}, "real= is required"),
    ({"ckpt": "a.pt", "fake": "b.npz"}, "not both"),
    ({"real": "no_such_thing", "fake": "no_such_thing"}, "not a folder, an .npz file"),
    ({"metrics": ["fid", "lpips"]}, "unknown metric lpips"),
    ({"n": 0}, "n must be > 0"),
])
def test_bad_arguments(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GanError, match=message):
        evaluate(**args)


def test_npz_without_samples_and_folders_of_mixed_sizes(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 1, 8, 8)))
    with pytest.raises(GanError, match="no 'samples' array"):
        evaluate(real="mnist5k", fake=str(tmp_path / "bad.npz"))
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.new("L", (8, 8)).save(folder / "a.png")
    Image.new("L", (9, 9)).save(folder / "b.png")
    with pytest.raises(GanError, match="differ in size"):
        evaluate(real="mnist5k", fake=str(folder), n=10, cache_dir=str(tmp_path / "c"))


def test_unknown_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--fdi"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--fid --kid --is --pr" in err


def test_flags_become_the_metric_list(tiny_run, tmp_path, capsys):
    main(["eval", f"ckpt={tiny_run}", "--kid", "--fid", "extractor=mnist", "n=30",
          "device=cpu", f"cache_dir={tmp_path}", f"out={tmp_path / 'r.json'}"])
    metrics = json.loads((tmp_path / "r.json").read_text())["metrics"]
    assert list(metrics)[:3] == ["mnist_fid", "mnist_kid", "mnist_kid_std"]
    assert "mnist_is" not in metrics
    with pytest.raises(ConfigError):
        EvalArgs(metrics=["is", "bogus"])

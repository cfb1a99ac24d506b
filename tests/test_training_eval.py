"""train.eval_every: a metric during training, logged, with the best checkpoint kept and
returned to sweepers. Uses the offline MNIST-classifier FID (fast on a CPU)."""

from __future__ import annotations

import json

import pytest
import torch

from gancli.errors import ConfigError, GanError
from gancli.metrics import inception
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from tests.helpers import TINY, compose_config

EVAL = [*TINY, "train.eval_every=2", "train.eval_metric=mnist_fid", "train.eval_n=64",
        "train.metric=mnist_fid"]


def eval_records(run_dir) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "mnist_fid" in r]


def test_eval_every_logs_keeps_best_and_returns_it(tmp_path):
    returned = train(compose_config(EVAL), tmp_path)
    records = eval_records(tmp_path)
    assert [r["step"] for r in records] == [2, 4]
    best = min(records, key=lambda r: r["mnist_fid"])
    assert returned == best["mnist_fid"]
    state = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert state["step"] == best["step"] and state["eval_best"] == returned
    assert load_checkpoint(tmp_path)["eval_best"] == returned  # last.pt, for resuming

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/mnist_fid")] == [2, 4]

    from gancli.summary import _last_record  # what gan summary and the HParams tab read

    final = _last_record(tmp_path / "metrics.jsonl")
    assert final["step"] == 4 and "d_loss" in final
    assert final["mnist_fid"] == records[-1]["mnist_fid"]


def test_the_final_step_is_evaluated_even_off_the_schedule(tmp_path):
    train(compose_config([*EVAL, "train.eval_every=3"]), tmp_path)
    assert [r["step"] for r in eval_records(tmp_path)] == [3, 4]


def test_evaluation_does_not_change_the_training_trajectory(tmp_path):
    train(compose_config(TINY), tmp_path / "plain")
    train(compose_config(EVAL), tmp_path / "evaluated")
    a, b = load_checkpoint(tmp_path / "plain"), load_checkpoint(tmp_path / "evaluated")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_metric_that_is_not_evaluated_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="train.eval_every > 0"):
        train(compose_config([*TINY, "train.metric=fid"]), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("override, key", [
    ("train.eval_every=-1", "train.eval_every"),
    ("train.eval_n=3", "train.eval_n"),
    ("train.eval_metric=lpips", "train.eval_metric"),
])
def test_bad_eval_settings_name_their_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose_config([*TINY, override])


def test_inception_fid_without_weights_fails_before_the_first_step(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(inception, "WEIGHTS_URL", "http://127.0.0.1:9/w.pth")
    with pytest.raises(GanError, match="inception_weights=PATH"):
        train(compose_config([*TINY, "train.eval_every=2", "train.eval_metric=fid"]),
              tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_score_of_best_pt_is_what_gan_eval_gives_for_it(tmp_path):
    # with an EMA generator: the EMA copy is what is evaluated and what gan eval samples
    returned = train(compose_config([*EVAL, "train.ema.decay=0.5"]), tmp_path / "run")
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    assert load_checkpoint(best)["ema"] is not None
    from gancli.metrics.evaluate import EvalArgs, run_eval

    result = run_eval(EvalArgs(ckpt=str(best), extractor="mnist", n=64, seed=0, device="cpu",
                               cache_dir=str(tmp_path / "cache")))
    assert result["metrics"]["mnist_fid"] == pytest.approx(returned, rel=1e-9)

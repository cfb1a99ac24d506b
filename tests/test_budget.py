"""train.max_seconds: a run stops at the first step that starts past its time budget, saved
and exported like a normal end, and a resume carries on with a fresh budget."""

import itertools

import pytest
import torch

from gancli.errors import ConfigError
from gancli.training import budget
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from tests.helpers import compose_config
from tests.test_resume import RING


@pytest.fixture
def one_second_per_look(monkeypatch):
    """A clock that advances one second each time it is read: the budget runs out at a known
    step, whatever the machine's speed."""
    ticks = itertools.count()
    monkeypatch.setitem(budget.CLOCKS, budget.Clock.cpu, lambda: float(next(ticks)))


def test_the_budget_ends_the_run_saved_and_resume_continues(tmp_path, one_second_per_look,
                                                            caplog):
    limited = [*RING, "train.steps=100", "train.max_seconds=5", "train.clock=cpu",
               "train.ckpt_every=1000", "train.log_every=1000"]
    run = tmp_path / "limited"
    with caplog.at_level("INFO", logger="gancli"):
        train(compose_config(limited), run)
    # read once at the start and once before each step: step 5 starts 5 s in and is the last
    assert load_checkpoint(run)["step"] == 5
    assert (run / "samples" / "step_0000005.png").exists()
    assert '"step": 5' in (run / "metrics.jsonl").read_text()
    assert "time budget spent: train.max_seconds=5 on the cpu clock" in caplog.text

    train(compose_config([*limited, f"resume={run}"]), run)  # a fresh 5 s: steps 6..10
    assert load_checkpoint(run)["step"] == 10

    train(compose_config([*RING, "train.steps=10"]), tmp_path / "plain")
    a, b = load_checkpoint(run), load_checkpoint(tmp_path / "plain")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_wall_clock_budget_stops_a_long_run(tmp_path):
    train(compose_config([*RING, "train.steps=1000000", "train.max_seconds=0.5"]), tmp_path)
    assert 0 < load_checkpoint(tmp_path)["step"] < 1000000


@pytest.mark.parametrize("override, needle", [
    ("train.max_seconds=0", "train.max_seconds must be > 0"),
    ("train.clock=gpu", "train.clock"),
])
def test_bad_budget_settings_fail_naming_the_key(override, needle):
    with pytest.raises(ConfigError, match=needle):
        compose_config([override])

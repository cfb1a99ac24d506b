"""gan viz / plot / report / nn, histograms and the HParams entry, on one tiny run."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gancli.errors import ConfigError, GanError
from tests.helpers import TINY, compose_config, run_gan

VIZ_RUN = [*TINY, "dataset.holdout=2", "train.histogram_every=2", "train.eval_every=2",
           "train.eval_metric=mnist_fid", "train.eval_n=40", "train.sample_every=1"]


@pytest.fixture(scope="module")
def viz_run(tmp_path_factory):
    """A tiny DCGAN run with held-out digits, histograms at steps 2 and 4, evaluations and
    a sample grid at every step."""
    from gancli.training.loop import train

    run_dir = tmp_path_factory.mktemp("viz_run")
    train(compose_config([*VIZ_RUN, "device.threads=1"]), run_dir)
    return run_dir


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_histograms_are_logged_at_the_chosen_steps_only(viz_run):
    tags = _events(viz_run).Tags()
    acc = _events(viz_run)
    hist = tags["histograms"]
    assert any(t.startswith("grads/G/") for t in hist) and any(t.startswith("grads/D/")
                                                               for t in hist)
    assert any(t.startswith("weights/D/") for t in hist)
    for tag in (t for t in hist if t.startswith(("grads/", "weights/"))):
        assert [e.step for e in acc.Histograms(tag)] == [2, 4]
    norms = [t for t in tags["scalars"] if t.startswith("grad_norm_layer/G/")]
    assert norms and [e.step for e in acc.Scalars(norms[0])] == [2, 4]


def test_histograms_are_off_by_default():
    assert compose_config([]).train.histogram_every == 0
    with pytest.raises(ConfigError, match="histogram_every must be >= 0"):
        compose_config(["train.histogram_every=-1"])

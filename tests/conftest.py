"""Fixtures shared by all tests; helpers live in tests/helpers.py."""

import pytest
import torch

from tests.helpers import TINY, compose_config, run_gan  # noqa: F401  (re-exported)


@pytest.fixture(autouse=True, scope="session")
def _private_metrics_cache(tmp_path_factory):
    """Real-data statistics that evaluations cache go to a temporary folder, never ~/.cache
    (subprocesses inherit the variable)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GANCLI_CACHE", str(tmp_path_factory.mktemp("gancli_cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _release_run_locks():
    """train() called in the test process keeps its run directory locked until the process
    ends (as a run would); release them so later subprocesses may resume those runs."""
    yield
    from gancli.training import runlock

    runlock.release_all()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One tiny DCGAN run on mnist5k, trained once per session; returns its run directory."""
    from gancli.training.loop import train

    run_dir = tmp_path_factory.mktemp("tiny_run")
    train(compose_config(TINY), run_dir)
    return run_dir

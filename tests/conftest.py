"""Fixtures shared by all tests; helpers live in tests/helpers.py."""

import pytest
import torch

from tests.helpers import TINY, compose_config, run_gan  # noqa: F401  (re-exported)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

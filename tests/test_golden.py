"""The training core trains bit-identical weights to the one before model families: the golden
digests in tests/golden/weights.json were recorded by tests/golden/record.py on the old core
(one G, one D, TrainStep), and the same commands must reproduce every tensor exactly."""

import json

import pytest

from gancli.training.loop import train
from gancli.training.snapshot import read
from tests.golden.record import GOLDEN, RUNS, digests
from tests.helpers import compose_config, network

GOLDEN_DIGESTS = json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("name", sorted(RUNS))
def test_refactored_core_trains_the_golden_weights(tmp_path, name):
    train(compose_config(RUNS[name]), tmp_path)
    state = read(tmp_path)
    golden = GOLDEN_DIGESTS[name]
    assert state["step"] == golden["step"]
    assert digests(network(state, "G")) == golden["G"]
    assert digests(network(state, "D")) == golden["D"]
    if "g_ema" in golden:
        assert digests(state["ema"]) == golden["g_ema"]

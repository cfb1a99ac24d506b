"""The training core trains bit-identical weights to the one before model families: the golden
digests in tests/golden/weights.json were recorded by tests/golden/record.py on the old core
(one G, one D, TrainStep), and the same commands must reproduce every tensor exactly."""

import json

import pytest

from gancli.training.loop import train
from gancli.training.snapshot import read
from tests.golden.record import GOLDEN, RUNS, digests
from tests.helpers import compose_config

GOLDEN_DIGESTS = json.loads(GOLDEN.read_text())


def _network(model_state: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in model_state.items() if k.startswith(prefix + ".")}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_refactored_core_trains_the_golden_weights(tmp_path, name):
    train(compose_config(RUNS[name]), tmp_path)
    state = read(tmp_path)
    golden = GOLDEN_DIGESTS[name]
    assert state["step"] == golden["step"]
    assert digests(_network(state["model"], "G")) == golden["G"]
    assert digests(_network(state["model"], "D")) == golden["D"]
    if "g_ema" in golden:
        assert digests(state["ema"]) == golden["g_ema"]

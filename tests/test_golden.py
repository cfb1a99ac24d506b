"""The training core trains bit-identical weights to the one before model families: the golden
digests in tests/golden/weights.json were recorded by tests/golden/record.py on the old core
(one G, one D, TrainStep), and the same commands must reproduce every tensor exactly. The bits
depend on the CPU's kernels too, so there is a record per kind of machine (see record.py): a
run must equal one of them, tensor for tensor."""

import json

import pytest

from gancli.training.loop import train
from tests.golden.record import RECORDS, RUNS, run_digests
from tests.helpers import compose_config

GOLDEN_DIGESTS = {path.name: json.loads(path.read_text()) for path in RECORDS}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_refactored_core_trains_the_golden_weights(tmp_path, name):
    train(compose_config(RUNS[name]), tmp_path)
    trained = run_digests(tmp_path)
    # every tensor a record holds (the EMA's where the old core kept one) must be equal
    matching = [record for record, runs in GOLDEN_DIGESTS.items()
                if all(trained.get(key) == value for key, value in runs[name].items())]
    assert matching, (f"{name}: the trained weights match none of {sorted(GOLDEN_DIGESTS)}; "
                      f"on a new kind of machine, record its digests from a commit whose "
                      f"core matched (tests/golden/record.py)")


def test_every_record_holds_every_run():
    assert len(GOLDEN_DIGESTS) >= 1
    for record, runs in GOLDEN_DIGESTS.items():
        assert set(runs) == set(RUNS), record
        assert all({"step", "G", "D"} <= set(run) for run in runs.values()), record

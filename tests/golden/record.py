"""Record the golden weights that tests/test_golden.py compares against.

Run once on the code *before* a refactor of the training core (that is how weights.json was
made: `python -m tests.golden.record`, on main at d0de96c, the 2-core CPU machine); the test then
checks that the refactored core trains bit-identical weights from the same seeds.
Each tensor is stored as the SHA-256 of its bytes, so the file stays small.

The bits depend on the CPU's kernels as well as the code: a machine of another kind trains
other bits from the same code. weights_amx.json holds the digests of a second kind (Xeon with
AMX and AVX512-FP16, where weights.json's do not reproduce), recorded with
`python -m tests.golden.record tests/golden/weights_amx.json` on main at 2e8bed8, whose core
had reproduced weights.json on the first kind (CI of 43a25b4). A run must match one record.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

GOLDEN = Path(__file__).with_name("weights.json")
RECORDS = sorted(GOLDEN.parent.glob("weights*.json"))  # one per kind of machine

_TINY = ["device=cpu", "device.threads=1", "train.batch_size=16", "train.log_every=2",
         "train.sample_every=1000", "train.num_samples=16"]

# name -> overrides. Recorded with the spellings of the time (model.hidden_g/hidden_d, now
# model.width_g/width_d); the renamed keys are written here in today's spelling.
RUNS = {
    "dcgan": [*_TINY, "model=dcgan", "model.width_g=8", "model.width_d=8", "train.steps=6",
              "train.ckpt_every=3", "train.ema.decay=0.9"],
    "mlp_ring8": [*_TINY, "dataset=ring8", "dataset.size=2048", "model=mlp",
                  "model.width_g=32", "model.width_d=32", "model.layers_g=2",
                  "model.layers_d=2", "train.steps=30", "train.ckpt_every=10",
                  "train.batch_size=64"],
    "infogan": [*_TINY, "model=infogan", "model.width_g=8", "model.width_d=8", "model.q_hidden=16",
                "train.steps=6", "train.ckpt_every=3"],
    # recorded as loss=wgan-gp, whose file then also set train.n_critic=5
    "wgan_gp": [*_TINY, "model=dcgan", "loss=wgan-gp", "train.n_critic=5", "model.width_g=8",
                "model.width_d=8",
                "train.steps=4", "train.ckpt_every=2"],
}


def digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def digests(weights: dict[str, torch.Tensor]) -> dict[str, str]:
    return {key: digest(value) for key, value in sorted(weights.items())}


def run_digests(run_dir: Path) -> dict:
    """The step and each network's digests of the checkpoint a run left in run_dir."""
    from gancli.training.snapshot import read
    from tests.helpers import network

    state = read(run_dir)
    record = {"step": state["step"], "G": digests(network(state, "G")),
              "D": digests(network(state, "D"))}
    if state.get("ema") is not None:
        record["g_ema"] = digests(state["ema"])
    return record


def main() -> None:
    from gancli.training.loop import train
    from tests.helpers import compose_config

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN
    golden = {}
    for name, overrides in RUNS.items():
        with tempfile.TemporaryDirectory() as tmp:
            train(compose_config(overrides), tmp)
            golden[name] = run_digests(Path(tmp))
        print(name, "recorded", file=sys.stderr)
    out.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Record the golden weights that tests/test_golden.py compares against.

Run once on the code *before* a refactor of the training core (that is how these were made:
`python -m tests.golden.record`, on main at d0de96c, the 2-core CPU machine); the test then
checks that the refactored core trains bit-identical weights from the same seeds.
Each tensor is stored as the SHA-256 of its bytes, so the file stays small.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

GOLDEN = Path(__file__).with_name("weights.json")

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


def main() -> None:
    from gancli.training.checkpoint import load_checkpoint
    from gancli.training.loop import train
    from tests.helpers import compose_config

    golden = {}
    for name, overrides in RUNS.items():
        with tempfile.TemporaryDirectory() as tmp:
            train(compose_config(overrides), tmp)
            state = load_checkpoint(tmp)
            golden[name] = {"step": state["step"], "G": digests(state["G"]),
                            "D": digests(state["D"])}
            if state.get("g_ema") is not None:
                golden[name]["g_ema"] = digests(state["g_ema"])
        print(name, "recorded", file=sys.stderr)
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()

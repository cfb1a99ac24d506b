"""Label and code families under torchrun (2 CPU ranks): labels and codes are sliced from the
global stream, D's heads and tuple outputs pass through DDP, the mixed labeled batches split
across ranks, and the ranks stay identical. Tiny random-weight networks: wiring, not quality."""

import pytest
import torch

from gancli.training.checkpoint import load_checkpoint
from tests.helpers import TINY
from tests.test_distributed import torchrun

BUFFERS = ("running_mean", "running_var", "num_batches_tracked")  # each rank's own


@pytest.mark.slow
@pytest.mark.parametrize("model", [
    ["model=acgan"],
    ["model=sgan", "dataset.holdout=5", "dataset.labeled=2", "dataset.labeled_per_batch=4",
     "model.baseline=true", "model.baseline_steps=2"],
])
def test_label_models_train_under_ddp(tmp_path, model):
    out = torchrun("train", *TINY, *model, "hydra.run.dir=run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rank0 = torch.load(tmp_path / "run" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "run" / "rank1.pt", weights_only=True)
    params = [k for k in rank0["model"] if not k.endswith(BUFFERS)]
    assert params and all(torch.equal(rank0["model"][k], rank1["model"][k]) for k in params)
    assert load_checkpoint(tmp_path / "run")["step"] == 4

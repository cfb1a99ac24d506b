"""Every loss trains with every architecture, and with every regulariser, for a few steps on
the CPU. Networks are tiny and random: these runs test wiring, not quality."""

import json

import pytest

from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from tests.helpers import compose_config

LOSSES = ["gan", "wgan", "wgan-gp", "lsgan", "hinge"]
TINY_MODEL = {
    "mlp": ["model=mlp", "model.width_g=16", "model.width_d=16", "model.layers_g=1",
            "model.layers_d=1"],
    "dcgan": ["model=dcgan", "model.width_g=4", "model.width_d=4"],
    "resnet": ["model=resnet", "model.width_g=4", "model.width_d=4"],
}
TINY_RUN = ["device=cpu", "device.threads=1", "dataset=digits", "dataset.resolution=32",
            "train.steps=2", "train.batch_size=8", "train.n_critic=2", "train.log_every=1",
            "train.sample_every=2", "train.ckpt_every=2", "train.num_samples=4"]


def _train(tmp_path, overrides):
    cfg = compose_config([*TINY_RUN, *overrides])
    train(cfg, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().split("\n")
               if line]
    assert [r["step"] for r in records] == [1, 2]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 2
    return cfg, records


@pytest.mark.parametrize("arch", list(TINY_MODEL))
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_with_every_architecture(tmp_path, loss, arch):
    _train(tmp_path, [f"loss={loss}", *TINY_MODEL[arch]])


# n_critic=2, so the logged D updates are numbers 1 and 3 (from 0): with reg_every=1 they carry
# a penalty, with reg_every=2 (lazy) they do not.
@pytest.mark.parametrize("arch,loss,extra,penalised", [
    ("mlp", "gan", ["loss.gp=10"], True),
    ("dcgan", "lsgan", ["loss.r1=1"], True),
    ("resnet", "hinge", ["loss.r1=1", "loss.gp=1", "loss.reg_every=2"], False),
    ("resnet", "wgan-gp", ["model.spectral_norm_d=true", "model.pack=2"], True),
    ("dcgan", "gan", ["model.spectral_norm_d=true", "model.pack=4", "train.ema.decay=0.9",
                      "optimizer.schedule=linear", "optimizer.max_grad_norm=1"], False),
])
def test_regularisers_and_stabilisers_train(tmp_path, arch, loss, extra, penalised):
    _, records = _train(tmp_path, [f"loss={loss}", *TINY_MODEL[arch], *extra])
    assert all(("d_penalty" in r) == penalised for r in records)
    assert all(r["d_penalty"] > 0 for r in records if penalised)


# Each label or code family (and selfcond, whose classes are clusters), on a DCGAN backbone,
# with every loss; wgan-gp's penalty and R1 differentiate D (with its class input) at
# interpolates and at real items.
LABEL_TERMS = {
    "cgan": [],
    "acgan": ["d_class_real", "d_class_fake", "g_class"],
    "infogan": ["d_info_cat", "g_info_cat", "d_info_cont", "g_info_cont"],
    "sgan": ["d_supervised", "g_feature_matching"],
    "selfcond": ["clusters_used"],
}


@pytest.mark.parametrize("model", list(LABEL_TERMS))
@pytest.mark.parametrize("loss", LOSSES)
def test_every_label_family_trains_with_every_loss(tmp_path, model, loss):
    extra = ["loss.r1=1"] if loss == "hinge" else []
    _, records = _train(tmp_path, [f"loss={loss}", f"model={model}", "model.arch=dcgan",
                                   "model.width_g=4", "model.width_d=4", *extra])
    for record in records:
        assert all(term in record for term in LABEL_TERMS[model])
        assert ("d_penalty" in record) == (loss == "wgan-gp" or bool(extra))

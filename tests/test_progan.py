"""ProGAN (model=progan): the growth schedule, fade-in, mid-fade resume, sampling a checkpoint
taken mid-growth, the optimizer reset and the drift term. Tiny networks with random weights on
16x16 mnist5k: only the wiring is under test."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.losses import build_loss
from gancli.models.progan import ProGANConfig, build_progan, growth
from gancli.sampling import SampleArgs, load_gan, run_sample
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from tests.helpers import compose_config

PRO = ["+experiment=progan_mnist5k", "dataset.resolution=16", "model.width_g=8",
       "model.width_d=8", "model.z_dim=8", "model.phase_steps=2", "train.batch_size=8",
       "train.log_every=1", "train.sample_every=100", "train.ckpt_every=4", "device=cpu",
       "device.threads=1", "train.num_samples=4"]
INFO = DataInfo(name="mnist5k", kind="image", shape=(1, 16, 16), num_classes=10)


def test_a_run_passes_through_every_resolution_with_fade_in(tmp_path):
    train(compose_config([*PRO, "train.steps=9"]), tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    seen = [(r["resolution"], r["alpha"]) for r in records if "alpha" in r]
    assert seen == [(4, 1), (4, 1), (8, 0), (8, 0.5), (8, 1), (8, 1), (16, 0), (16, 0.5),
                    (16, 1)]
    assert growth(100, 2, 2) == (2, 1.0)  # the last resolution stays


def test_fade_in_at_alpha_0_is_the_resolution_below():
    torch.manual_seed(0)
    model = build_progan(ProGANConfig(width_g=8, width_d=8, z_dim=8, phase_steps=2), INFO)
    z = torch.randn(4, 8)
    model.set_growth(2)  # stage 0, 4x4
    with torch.no_grad():
        low = model.G(z)
        x8 = torch.randn(4, 1, 8, 8)
        score_low = model.D(F.avg_pool2d(x8, 2))
        model.set_growth(3)  # stage 1 fading in, alpha 0
        torch.testing.assert_close(model.G(z), F.interpolate(low, scale_factor=2))
        torch.testing.assert_close(model.D(x8), score_low)
        model.set_growth(4)  # alpha 0.5: the new block counts
        assert not torch.allclose(model.G(z), F.interpolate(low, scale_factor=2))


def test_a_checkpoint_mid_fade_resumes_bit_identically(tmp_path):
    """Step 4 is halfway through the fade-in of 8x8; the runs go on into the 16x16 fade."""
    train(compose_config([*PRO, "train.steps=8"]), tmp_path / "full")
    train(compose_config([*PRO, "train.steps=4"]), tmp_path / "resumed")
    assert load_checkpoint(tmp_path / "resumed")["model"]["G.alpha"] == 0.5
    train(compose_config([*PRO, "train.steps=8", f"resume={tmp_path / 'resumed'}"]),
          tmp_path / "resumed")
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 8
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_gan_sample_on_a_checkpoint_mid_growth_samples_at_its_resolution(tmp_path):
    train(compose_config([*PRO, "train.steps=2", "train.ckpt_every=2"]), tmp_path)
    model, _ = load_gan(tmp_path, torch.device("cpu"))
    assert int(model.G.stage) == 0  # 4x4
    out = run_sample(SampleArgs(ckpt=str(tmp_path), out=str(tmp_path / "s.npz"), n=3))
    samples = torch.from_numpy(np.load(out)["samples"])
    assert samples.shape[-2:] == (16, 16)
    blocks = samples.unfold(-2, 4, 4).unfold(-2, 4, 4)  # each 4x4 block is one pixel of 4x4
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))


@pytest.mark.parametrize("reset, adam_steps", [(False, {2, 4}), (True, {2})])
def test_the_optimizer_state_can_restart_at_each_resolution(tmp_path, reset, adam_steps):
    """8x8 begins at step 3: its new layers have taken 2 steps by step 4, the 4x4 layers 4
    unless the state was cleared then."""
    train(compose_config([*PRO, "train.steps=4", f"model.reset_optimizer={reset}"]), tmp_path)
    state = load_checkpoint(tmp_path)["optimizers"]["g"]["state"]
    assert {int(s["step"]) for s in state.values()} == adam_steps


def test_drift_adds_the_mean_squared_real_score_to_the_critic_loss():
    loss = build_loss(compose_config(["loss=wgan-gp", "loss.drift=0.01"]).loss)
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    assert loss.d_loss(real, fake).item() == pytest.approx(0.0 - 2.0 + 0.01 * 5.0)


def test_a_resolution_that_cannot_grow_from_4x4_fails_clearly():
    with pytest.raises(ConfigError, match="power-of-two resolution >= 8, got 28; set "
                                          "dataset.resolution"):
        build_progan(ProGANConfig(), DataInfo("mnist5k", "image", (1, 28, 28), 10))
    with pytest.raises(ConfigError, match="model.mbstd_group must be >= 0"):
        compose_config(["model=progan", "model.mbstd_group=-1"])

"""TTUR betas, learning-rate schedules, gradient-norm clipping and the EMA generator."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.images import image_grid, save_png
from gancli.losses import build_loss
from gancli.models import build_model
from gancli.sampling import load_gan
from gancli.training.checkpoint import load_checkpoint
from gancli.training.ema import EMA, EMAConfig, build_ema
from gancli.training.loop import train
from gancli.training.optimizers import build_optimizer
from gancli.training.schedules import build_schedule
from gancli.training.step import StepOptions, grad_norm
from tests.helpers import adversarial_step, compose_config, network

MLP_IMAGES = ["device=cpu", "device.threads=1", "dataset=digits", "model=mlp",
              "model.width_g=16", "model.width_d=16", "model.layers_g=1", "model.layers_d=1",
              "train.batch_size=8", "train.num_samples=4", "train.log_every=1"]


def test_betas_and_learning_rates_per_network():
    cfg = compose_config(["optimizer.lr_g=1e-4", "optimizer.lr_d=4e-4",
                          "optimizer.betas_g=[0.0,0.9]", "optimizer.betas_d=[0.5,0.99]"]).optimizer
    p = [nn.Parameter(torch.zeros(1))]
    g = build_optimizer(cfg, p, "g").param_groups[0]
    d = build_optimizer(cfg, p, "d").param_groups[0]
    assert (g["lr"], g["betas"]) == (1e-4, (0.0, 0.9))
    assert (d["lr"], d["betas"]) == (4e-4, (0.5, 0.99))
    shared = build_optimizer(compose_config([]).optimizer, p, "g").param_groups[0]
    assert shared["betas"] == (0.5, 0.999)


@pytest.mark.parametrize("override,key", [("optimizer.betas_g=[1.0,0.9]", "optimizer.betas_g"),
                                          ("optimizer.max_grad_norm=0", "optimizer.max_grad_norm"),
                                          ("optimizer.schedule=cosine", "optimizer.schedule")])
def test_bad_optimizer_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        compose_config([override])


def test_linear_schedule_decays_to_zero_at_the_last_step():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.8)
    sched = build_schedule("linear", opt, total_steps=4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.8, 0.6, 0.4, 0.2]) and opt.param_groups[0]["lr"] == 0.0
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.8)
    sched = build_schedule("constant", opt, total_steps=4)
    for _ in range(4):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == 0.8


def test_training_logs_the_decaying_learning_rate(tmp_path):
    cfg = compose_config([*MLP_IMAGES, "train.steps=4", "optimizer.schedule=linear",
                          "optimizer.lr=1e-3", "train.sample_every=4", "train.ckpt_every=4"])
    train(cfg, tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [round(json.loads(x)["lr_g"], 6) for x in lines] == [
        1e-3, 7.5e-4, 5e-4, 2.5e-4]
    state = load_checkpoint(tmp_path)
    assert state["schedules"]["g"]["last_epoch"] == 4 == state["schedules"]["d"]["last_epoch"]


def test_gradient_norm_clipping_limits_both_networks():
    # random-weight networks: this checks that the clip is applied before each update
    cfg = compose_config(MLP_IMAGES)
    gan = build_model(cfg.model, DataInfo("d", "image", (1, 8, 8)))
    loss = build_loss(cfg.loss)
    opt_d = torch.optim.SGD(gan.D.parameters(), lr=0.0)  # lr 0: weights stay, grads remain
    opt_g = torch.optim.SGD(gan.G.parameters(), lr=0.0)
    real = torch.rand(8, 1, 8, 8) * 2 - 1
    stats = {}
    step = adversarial_step(gan, loss, opt_g, opt_d,
                            StepOptions(batch_size=8, max_grad_norm=1e-3, freeze_d=True))
    step(iter([(real, None)]), 1, stats)
    # D's update ran first; G's update computes no weight gradients for D (freeze_d)
    assert grad_norm(list(gan.D.parameters())) == pytest.approx(1e-3, rel=1e-3)
    assert grad_norm(list(gan.G.parameters())) == pytest.approx(1e-3, rel=1e-3)
    assert stats["grad_norm_d"] > 1e-3 and stats["grad_norm_g"] > 1e-3  # logged before clipping


def test_ema_update_is_the_exponential_average():
    G = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(G, beta=0.9, start=1)
    before = [p.detach().clone() for p in ema.G.parameters()]
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
        G[1].running_mean.fill_(3.0)
    ema.update(G, step=1)  # until `start` the copy follows G exactly
    assert all(torch.equal(a, b) for a, b in zip(ema.G.parameters(), G.parameters(), strict=True))
    before = [p.detach().clone() for p in ema.G.parameters()]
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
    ema.update(G, step=2)
    for avg, old, new in zip(ema.G.parameters(), before, G.parameters(), strict=True):
        assert torch.allclose(avg, 0.9 * old + 0.1 * new)
    assert ema.G[1].running_mean.tolist() == [3.0, 3.0]  # buffers are copied
    assert not any(p.requires_grad for p in ema.G.parameters()) and not ema.G.training


def test_ema_rampup_caps_the_half_life_at_a_share_of_the_images_seen():
    cfg = EMAConfig(half_life=1000, rampup=0.05)
    ema = build_ema(nn.Linear(1, 1, bias=False), cfg, batch_size=10)
    for step, half_life in [(100, 50.0), (1000, 500.0), (5000, 1000.0)]:  # 5% of 10 x step
        with torch.no_grad():
            ema.G.weight.fill_(0.0)
        G = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            G.weight.fill_(1.0)
        ema.update(G, step)  # the new average: (1 - beta) x 1 + beta x 0
        assert ema.G.weight.item() == pytest.approx(1 - 0.5 ** (10 / half_life))
    with pytest.raises(ConfigError, match="train.ema.rampup shortens train.ema.half_life"):
        EMAConfig(decay=0.999, rampup=0.05)


def test_ema_half_life_is_counted_in_images():
    assert EMAConfig(half_life=640).beta(64) == pytest.approx(0.5 ** 0.1)
    assert EMAConfig(half_life=64).beta(64) == pytest.approx(0.5)
    assert EMAConfig(decay=0.999).beta(64) == 0.999
    assert not EMAConfig().enabled


@pytest.mark.parametrize("overrides,key", [
    (["train.ema.decay=0.9", "train.ema.half_life=100"], "only one"),
    (["train.ema.decay=1.0"], "train.ema.decay"),
    (["train.ema.half_life=0"], "train.ema.half_life"),
])
def test_bad_ema_values_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        compose_config(overrides)


def test_ema_generator_is_checkpointed_sampled_and_drawn_in_grids(tmp_path):
    cfg = compose_config([*MLP_IMAGES, "train.steps=6", "train.sample_every=6",
                          "train.ckpt_every=6", "optimizer.lr=1e-2", "train.ema.decay=0.9"])
    train(cfg, tmp_path)
    state = load_checkpoint(tmp_path)
    G = network(state, "G")
    assert state["ema"] is not None
    assert any(not torch.equal(state["ema"][k], G[k]) for k in G)
    cpu = torch.device("cpu")
    ema_gan, _ = load_gan(tmp_path, cpu, ema=True)
    raw_gan, _ = load_gan(tmp_path, cpu, ema=False)
    for key, value in ema_gan.G.state_dict().items():
        assert torch.equal(value, state["ema"][key])
        assert torch.equal(raw_gan.G.state_dict()[key], G[key])
    # the run's sample grid shows the EMA generator on the fixed noise, not G
    def pixels(path):
        return np.asarray(Image.open(path))

    with torch.no_grad():
        save_png(image_grid(ema_gan.generate(state["fixed_z"])), tmp_path / "ema.png")
        save_png(image_grid(raw_gan.generate(state["fixed_z"])), tmp_path / "raw.png")
    saved = pixels(tmp_path / "samples" / "step_0000006.png")
    assert np.array_equal(saved, pixels(tmp_path / "ema.png"))
    assert not np.array_equal(saved, pixels(tmp_path / "raw.png"))


def test_no_ema_by_default(tmp_path):
    cfg = compose_config([*MLP_IMAGES, "train.steps=2", "train.sample_every=2",
                          "train.ckpt_every=2"])
    train(cfg, tmp_path)
    assert load_checkpoint(tmp_path)["ema"] is None


def test_each_groups_gradient_is_its_own_updates_after_a_step():
    """D's .grad after a GAN step (what train.histogram_every logs) is the gradient of D's own
    loss, not that plus G's loss backpropagated through D (D is not frozen on the CPU)."""
    torch.manual_seed(0)
    G, D = nn.Linear(2, 2), nn.Linear(2, 1)
    opt_g, opt_d = (torch.optim.SGD(n.parameters(), lr=0.1) for n in (G, D))
    from gancli.training.step import StepContext

    ctx = StepContext(build_loss(compose_config().loss), {"d": opt_d, "g": opt_g},
                      StepOptions(), torch.device("cpu"))
    z, real = torch.randn(4, 2), torch.randn(4, 2)
    d_loss = D(real).mean() - D(G(z).detach()).mean()
    expected = torch.autograd.grad(d_loss, list(D.parameters()), retain_graph=True)
    ctx.update(d_loss, "d", 1, None)
    ctx.update(-D(G(z)).mean(), "g", 1, None)  # reaches D's weights too
    for param, grad in zip(D.parameters(), expected, strict=True):
        torch.testing.assert_close(param.grad, grad, rtol=0, atol=0)
    assert all(p.grad is not None for p in G.parameters())

"""Loss values against hand computation on a fixed tiny batch; penalties on a linear critic
whose input gradient is known exactly; weight clipping; per-loss defaults in the YAML files."""

import math

import pytest
import torch
from torch import nn

from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.losses import build_loss
from gancli.models.base import GAN
from tests.helpers import REPO, compose_config

REAL = torch.tensor([1.0, -2.0])  # raw D scores of two real samples
FAKE = torch.tensor([0.5, -1.0])  # and of two generated ones


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def _loss(*overrides):
    return build_loss(compose_config(list(overrides)).loss)


# (overrides, expected d_loss, expected g_loss), written out from each paper's formula
HAND = {
    "gan": (["loss=gan"],
            -(math.log(sigmoid(1.0)) + math.log(sigmoid(-2.0))) / 2
            - (math.log(1 - sigmoid(0.5)) + math.log(1 - sigmoid(-1.0))) / 2,
            -(math.log(sigmoid(0.5)) + math.log(sigmoid(-1.0))) / 2),
    "gan-minimax": (["loss=gan", "loss.minimax=true"],
                    -(math.log(sigmoid(1.0)) + math.log(sigmoid(-2.0))) / 2
                    - (math.log(1 - sigmoid(0.5)) + math.log(1 - sigmoid(-1.0))) / 2,
                    (math.log(1 - sigmoid(0.5)) + math.log(1 - sigmoid(-1.0))) / 2),
    # E[D(G(z))] - E[D(x)] = -0.25 + 0.5; G: -E[D(G(z))]
    "wgan": (["loss=wgan"], 0.25, 0.25),
    "wgan-gp": (["loss=wgan-gp"], 0.25, 0.25),
    # 0.5 E[(D(x) - 1)^2] + 0.5 E[D(G(z))^2] = 0.5 * 4.5 + 0.5 * 0.625; G: 0.5 E[(D(G(z)) - 1)^2]
    "lsgan": (["loss=lsgan"], 2.5625, 1.0625),
    # E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] = 1.5 + 0.75
    "hinge": (["loss=hinge"], 2.25, 0.25),
}


@pytest.mark.parametrize("name", list(HAND))
def test_loss_values_match_hand_computation(name):
    overrides, d_expected, g_expected = HAND[name]
    loss = _loss(*overrides)
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d_expected, rel=1e-6)
    assert loss.g_loss(FAKE).item() == pytest.approx(g_expected, rel=1e-6)


def test_lsgan_targets_are_configurable():
    loss = _loss("loss=lsgan", "loss.fake_label=-1", "loss.real_label=1", "loss.g_target=0")
    # 0.5 E[(D(x) - 1)^2] + 0.5 E[(D(G(z)) + 1)^2] = 0.5 * 4.5 + 0.5 * 1.125
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(2.8125)
    assert loss.g_loss(FAKE).item() == pytest.approx(0.5 * (0.25 + 1) / 2)


def linear_critic(weight: list[float], pack: int = 1) -> GAN:
    """A GAN whose D is x -> w.x + 1: its input gradient is w everywhere. G is unused."""
    D = nn.Linear(len(weight), 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([weight]))
        D.bias.fill_(1.0)
    return GAN(nn.Identity(), D, 2, DataInfo("p", "points", (2,)), pack=pack)


REAL_X = torch.tensor([[0.0, 1.0], [2.0, -1.0], [1.0, 1.0], [-3.0, 0.5]])
FAKE_X = torch.tensor([[5.0, 5.0], [0.0, 0.0], [-1.0, 2.0], [0.5, 0.5]])


def test_gradient_penalty_of_a_linear_critic():
    # ||w|| = 5 at every interpolate: lambda * (5 - 1)^2
    gan = linear_critic([3.0, 4.0])
    penalty = _loss("loss=wgan-gp").d_penalty(gan, REAL_X, FAKE_X, None)
    assert penalty.item() == pytest.approx(10 * 16)


def test_r1_penalty_of_a_linear_critic_on_any_loss():
    gan = linear_critic([3.0, 4.0])
    penalty = _loss("loss=hinge", "loss.r1=0.5").d_penalty(gan, REAL_X, FAKE_X, None)
    assert penalty.item() == pytest.approx(0.5 / 2 * 25)


def test_gradient_penalty_reaches_the_critic_weights():
    gan = linear_critic([3.0, 4.0])
    _loss("loss=gan", "loss.gp=1").d_penalty(gan, REAL_X, FAKE_X, None).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert gan.D.weight.grad[0].tolist() == pytest.approx([2 * 4 * 3 / 5, 2 * 4 * 4 / 5])


def test_penalty_norm_is_taken_per_pack():
    # packed D input is (x1, y1, x2, y2); w = (1, 2, 2, 4) has norm 5 over the pack, while
    # the per-sample parts have norms sqrt(5) and sqrt(20)
    gan = linear_critic([1.0, 2.0, 2.0, 4.0], pack=2)
    assert _loss("loss=wgan-gp").d_penalty(gan, REAL_X, FAKE_X, None).item() == pytest.approx(160)


def test_lazy_regularisation_applies_every_k_steps_scaled_by_k():
    gan = linear_critic([3.0, 4.0])
    loss = _loss("loss=gan", "loss.r1=2", "loss.reg_every=4")
    values = [loss.d_penalty(gan, REAL_X, FAKE_X, None, step) for step in range(6)]
    assert values[0].item() == pytest.approx(4 * 25) and values[4].item() == pytest.approx(100)
    assert all(v is None for i, v in enumerate(values) if i % 4)


def test_no_penalty_by_default():
    gan = linear_critic([3.0, 4.0])
    for name in ("gan", "wgan", "lsgan", "hinge"):
        assert _loss(f"loss={name}").d_penalty(gan, REAL_X, FAKE_X, None) is None


def test_wgan_clips_every_critic_weight():
    gan = linear_critic([3.0, -4.0])
    _loss("loss=wgan", "loss.clip=0.5").after_d_step(gan)
    assert gan.D.weight.tolist() == [[0.5, -0.5]] and gan.D.bias.item() == 0.5
    gan = linear_critic([3.0, -4.0])
    _loss("loss=wgan-gp").after_d_step(gan)  # no clipping: the penalty does that job
    assert gan.D.weight.tolist() == [[3.0, -4.0]]


def test_loss_files_set_only_loss_keys_and_recipes_pick_the_papers_settings():
    from gancli.config import group_options

    for name in group_options("loss"):  # a loss file is a loss block, nothing global
        text = (REPO / "conf" / "loss" / f"{name}.yaml").read_text()
        assert "@package _global_" not in text and "train:" not in text, name
    wgan = compose_config(["loss=wgan"])
    assert (wgan.loss.clip, wgan.optimizer.name, wgan.train.n_critic) == (0.01, "adam", 1)
    wgan = compose_config(["+experiment=wgan"])
    assert (wgan.optimizer.name, wgan.optimizer.lr, wgan.train.n_critic) == ("rmsprop", 5e-5, 5)
    gp = compose_config(["+experiment=wgan_gp"])
    assert (gp.loss.name, gp.loss.gp, gp.train.n_critic, gp.optimizer.name) == (
        "wgan-gp", 10.0, 5, "adam")


def test_command_line_overrides_win_over_recipes():
    cfg = compose_config(["+experiment=wgan", "optimizer=adam", "train.n_critic=2"])
    assert (cfg.optimizer.name, cfg.train.n_critic) == ("adam", 2)
    cfg = compose_config(["train.n_critic=3", "+experiment=wgan_gp", "loss.gp=1"])
    assert (cfg.train.n_critic, cfg.loss.gp) == (3, 1.0)


@pytest.mark.parametrize("override,key", [("loss.gp=-1", "loss.gp"), ("loss.r1=-0.1", "loss.r1"),
                                          ("loss.reg_every=0", "loss.reg_every")])
def test_bad_regulariser_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        compose_config(["loss=hinge", override])


def test_bad_clip_names_the_key():
    with pytest.raises(ConfigError, match="loss.clip"):
        compose_config(["loss=wgan", "loss.clip=0"])

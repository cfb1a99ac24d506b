"""The Karras et al. layers (gancli/models/layers.py) against their definitions, and
model.equalized_lr on the existing architectures (random weights: only the wiring is tested)."""

import math

import pytest
import torch
from torch import nn

from gancli.data.base import DataInfo
from gancli.models import build_model
from gancli.models.layers import (
    MinibatchStd,
    PixelNorm,
    add_equalized_lr,
    blur_kernel,
    downsample2,
    upsample2,
)
from tests.helpers import compose_config


@pytest.mark.parametrize("layer, fan_in", [
    (nn.Linear(50, 7), 50),
    (nn.Conv2d(6, 5, 3), 6 * 9),
    (nn.ConvTranspose2d(6, 5, 4), 6 * 16),  # ProGAN counts the input channels
])
def test_equalized_lr_scales_a_unit_normal_weight_by_hes_constant(layer, fan_in):
    torch.manual_seed(0)
    add_equalized_lr(layer)
    stored = layer.parametrizations.weight.original
    assert abs(stored.std().item() - 1) < 0.1 and torch.all(layer.bias == 0)
    torch.testing.assert_close(layer.weight, stored * math.sqrt(2) / math.sqrt(fan_in))


def test_equalized_lr_multiplier_scales_weight_and_bias():
    torch.manual_seed(0)
    layer = add_equalized_lr(nn.Linear(400, 400), gain=1.0, lr_multiplier=0.01)
    stored = layer.parametrizations.weight.original
    assert abs(stored.std().item() - 100) < 2  # N(0, 1/lr_multiplier^2)
    torch.testing.assert_close(layer.weight, stored * 0.01 / 20)
    with torch.no_grad():
        layer.parametrizations.bias.original.fill_(3.0)
    torch.testing.assert_close(layer.bias, torch.full((400,), 0.03))


def test_equalized_lr_gives_layers_of_any_fan_in_the_same_relative_adam_step():
    """The point of it: Adam moves each stored weight by about lr, so the effective weights of
    a narrow and a wide layer change by the same fraction of their size."""
    torch.manual_seed(0)
    narrow, wide = add_equalized_lr(nn.Linear(4, 64)), add_equalized_lr(nn.Linear(1024, 64))
    changes = []
    for layer in (narrow, wide):
        before = layer.weight.detach().clone()
        opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
        layer(torch.randn(32, layer.in_features)).square().mean().backward()
        opt.step()
        changes.append(((layer.weight - before).norm() / before.norm()).item())
    assert changes[0] == pytest.approx(changes[1], rel=0.2)


@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_model_equalized_lr_parametrizes_g_and_d_and_round_trips(model):
    torch.manual_seed(0)
    cfg = compose_config([f"model={model}", "model.equalized_lr=true"])
    info = DataInfo(name="mnist5k", kind="image", shape=(1, 28, 28), num_classes=10)
    family = build_model(cfg.model, info)
    layers = [m for m in family.modules() if isinstance(m, (nn.Linear, nn.Conv2d,
                                                            nn.ConvTranspose2d))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    again = build_model(cfg.model, info)
    again.load_state_dict(family.state_dict())
    z = family.sample_latent(3, torch.device("cpu"))
    y = torch.zeros(3, dtype=torch.long)
    family.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(family.generate(z, y), again.generate(z, y))


def test_minibatch_std_appends_each_groups_feature_spread():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 3, 3)
    out = MinibatchStd(group=4, channels=2)(x)  # 6 samples: groups of 3 (the divisor <= 4)
    assert out.shape == (6, 6, 3, 3)
    torch.testing.assert_close(out[:, :4], x)
    for i in range(6):
        members = x[[j for j in range(6) if j % 2 == i % 2]]  # group i % (6 / 3)
        for part in range(2):
            chunk = members[:, 2 * part:2 * part + 2]
            expected = (chunk.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
            torch.testing.assert_close(out[i, 4 + part], expected.expand(3, 3))


def test_minibatch_std_gradient_is_that_of_the_textbook_variance():
    # the layer spells the variance out (faster on the CPU); its gradient must be var's
    torch.manual_seed(0)
    x = torch.randn(8, 6, 3, 3, requires_grad=True)  # float32: what the layer computes in
    weights = torch.randn(8, 8, 3, 3)
    (MinibatchStd(group=4, channels=2)(x) * weights).sum().backward()
    ours, x.grad = x.grad, None
    groups = x.reshape(4, -1, 2, 3, 3, 3)  # sample i is member i // 2 of group i % 2
    spread = (groups.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(2, 3, 4))
    spread = spread.reshape(-1, 2, 1, 1).repeat(4, 1, 3, 3)
    (torch.cat([x, spread], dim=1) * weights).sum().backward()
    torch.testing.assert_close(ours, x.grad)


def test_minibatch_std_of_identical_samples_is_zero():
    x = torch.randn(1, 8, 2, 2).repeat(4, 1, 1, 1)
    assert MinibatchStd(group=4)(x)[:, -1].abs().max() < 1e-3


def test_pixel_norm_gives_each_pixel_unit_mean_square():
    x = torch.randn(2, 16, 5, 5) * 7
    torch.testing.assert_close(PixelNorm()(x).square().mean(dim=1), torch.ones(2, 5, 5))


def test_blur_resampling_halves_and_doubles_and_keeps_a_flat_image_flat():
    assert blur_kernel().sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(blur_kernel()[0], torch.tensor([1., 3, 3, 1]) / 64)
    flat = torch.full((1, 3, 8, 8), 2.0)
    down, up = downsample2(flat), upsample2(flat)
    assert down.shape == (1, 3, 4, 4) and up.shape == (1, 3, 16, 16)
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.full((1, 3, 2, 2), 2.0))
    torch.testing.assert_close(up[..., 2:-2, 2:-2], torch.full((1, 3, 12, 12), 2.0))

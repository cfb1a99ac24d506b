"""The options every architecture shares (model.init, model.pack, model.spectral_norm_d) take
effect on mlp, dcgan and resnet alike. Networks here have random weights: these test wiring."""

import math

import pytest
import torch
from torch import nn

from gancli.data.base import DataInfo
from gancli.errors import GanError
from gancli.models import build_model
from tests.helpers import compose_config

CPU = torch.device("cpu")
TINY_MODEL = {
    "mlp": ["model=mlp", "model.width_g=32", "model.width_d=32", "model.layers_g=2",
            "model.layers_d=2"],
    "dcgan": ["model=dcgan", "model.width_g=8", "model.width_d=8"],
    "resnet": ["model=resnet", "model.width_g=8", "model.width_d=8"],
}
IMAGES = DataInfo("x", "image", (3, 32, 32))


def _model(arch: str, *overrides, info: DataInfo = IMAGES):
    return build_model(compose_config([*TINY_MODEL[arch], *overrides]).model, info)


def _weighted(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d,
                                                          nn.ConvTranspose2d))]


def _sigma(layer: nn.Module) -> float:
    """Largest singular value of the layer's weight as SN sees it: (out, everything else)."""
    w = layer.weight
    w = w.transpose(0, 1) if isinstance(layer, nn.ConvTranspose2d) else w
    return torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item()


@pytest.mark.parametrize("arch", list(TINY_MODEL))
def test_spectral_norm_bounds_every_discriminator_layer(arch):
    gan = _model(arch, "model.spectral_norm_d=true")
    layers = _weighted(gan.D)
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    assert not any(hasattr(m, "parametrizations") for m in _weighted(gan.G))
    with torch.no_grad():
        for m in layers:
            m.parametrizations.weight.original.mul_(50)  # far from 1 before normalising
    x = torch.randn(2, *IMAGES.shape)
    with torch.no_grad():
        for _ in range(30):  # each training-mode forward runs one power iteration
            gan.discriminate(x)
    gan.eval()
    assert [_sigma(m) for m in layers] == pytest.approx([1.0] * len(layers), rel=2e-2)
    plain = _model(arch)
    assert not any(hasattr(m, "parametrizations") for m in _weighted(plain.D))


@pytest.mark.parametrize("arch", list(TINY_MODEL))
def test_packing_makes_d_judge_groups_of_samples(arch):
    gan = _model(arch, "model.pack=4")
    first = _weighted(gan.D)[0]
    assert first.weight.shape[1] == 4 * 3 * (32 * 32 if arch == "mlp" else 1)
    x = torch.randn(8, *IMAGES.shape)
    gan.eval()
    with torch.no_grad():
        scores = gan.discriminate(x)
        assert scores.shape == (2,)
        # swapping the two packs swaps the scores; moving a sample between packs changes them
        swapped = gan.discriminate(torch.cat([x[4:], x[:4]]))
        assert torch.allclose(swapped, scores.flip(0), atol=1e-6)
        mixed = gan.discriminate(x[[0, 1, 2, 4, 3, 5, 6, 7]])
        assert not torch.allclose(mixed, scores)
        with pytest.raises(GanError, match="model.pack"):
            gan.discriminate(x[:6])


def test_packing_points_concatenates_coordinates():
    gan = _model("mlp", "model.pack=2", info=DataInfo("p", "points", (2,)))
    assert _weighted(gan.D)[0].in_features == 4
    x = torch.arange(8.0).view(4, 2)
    assert gan.pack_samples(x).tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]


def _gain_leaky():
    return math.sqrt(2 / (1 + 0.2 ** 2))


def _check_init(scheme: str, weight: torch.Tensor) -> None:
    w = weight.detach().reshape(weight.shape[0], -1)
    receptive = weight[0][0].numel()  # kernel size of a conv weight, 1 for a linear one
    fan_out, fan_in = weight.shape[0] * receptive, weight.shape[1] * receptive
    if scheme == "dcgan":
        assert w.std().item() == pytest.approx(0.02, rel=0.1)
    elif scheme == "xavier":
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert w.abs().max().item() <= bound and w.std().item() == pytest.approx(
            bound / math.sqrt(3), rel=0.1)
    elif scheme == "kaiming":
        assert w.std().item() == pytest.approx(_gain_leaky() / math.sqrt(fan_in), rel=0.1)
    elif scheme == "orthogonal":
        small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        assert torch.allclose(small, torch.eye(small.shape[0]), atol=1e-4)
    else:  # PyTorch's default: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = 1 / math.sqrt(fan_in)
        assert w.abs().max().item() <= bound and w.std().item() == pytest.approx(
            bound / math.sqrt(3), rel=0.1)


@pytest.mark.parametrize("scheme", ["dcgan", "xavier", "kaiming", "orthogonal", "default"])
@pytest.mark.parametrize("arch", list(TINY_MODEL))
def test_each_init_scheme_takes_effect_on_every_architecture(arch, scheme):
    gan = _model(arch, f"model.init={scheme}")
    # the widest layers give the tightest statistics; init runs before spectral norm wraps
    layers = sorted(_weighted(gan.G) + _weighted(gan.D), key=lambda m: -m.weight.numel())
    for layer in layers[:2]:
        _check_init(scheme, layer.weight)
        if scheme != "default" and layer.bias is not None:
            assert layer.bias.abs().max().item() == 0


def test_init_applies_to_the_weights_spectral_norm_wraps():
    gan = _model("dcgan", "model.init=dcgan", "model.spectral_norm_d=true")
    big = max(_weighted(gan.D), key=lambda m: m.weight.numel())
    assert big.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.1)


def test_sample_checkpoint_roundtrip_keeps_spectral_norm_and_packing():
    cfg = compose_config([*TINY_MODEL["resnet"], "model.spectral_norm_d=true", "model.pack=2"])
    a, b = build_model(cfg.model, IMAGES), build_model(cfg.model, IMAGES)
    b.D.load_state_dict(a.D.state_dict())  # same keys: SN's parametrization is part of the model
    a.eval(), b.eval()
    x = torch.randn(4, *IMAGES.shape)
    assert torch.allclose(a.discriminate(x), b.discriminate(x))

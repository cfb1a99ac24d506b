import pytest
import torch

from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models import build_model
from tests.helpers import compose_config


def _model(info: DataInfo, *overrides):
    return build_model(compose_config(list(overrides)).model, info)


@pytest.mark.parametrize("resolution,channels", [(28, 1), (32, 3), (64, 3), (32, 1)])
def test_dcgan_shapes(resolution, channels):
    info = DataInfo("x", "image", (channels, resolution, resolution))
    gan = _model(info, "model=dcgan", "model.width_g=8", "model.width_d=8")
    z = gan.sample_latent(5, torch.device("cpu"))
    x = gan.generate(z)
    assert x.shape == (5, channels, resolution, resolution)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert gan.discriminate(x).shape == (5,)


def test_dcgan_weights_follow_radford_init():
    gan = _model(DataInfo("x", "image", (1, 64, 64)), "model=dcgan")
    conv = [m.weight for m in gan.modules() if isinstance(m, (torch.nn.Conv2d,
                                                              torch.nn.ConvTranspose2d))]
    weights = torch.cat([w.flatten() for w in conv])
    assert weights.mean().abs() < 1e-3 and weights.std().item() == pytest.approx(0.02, rel=0.05)


def test_dcgan_rejects_unsupported_resolution_naming_the_fix():
    with pytest.raises(ConfigError, match="dataset.resolution"):
        _model(DataInfo("digits", "image", (1, 8, 8)), "model=dcgan")


def test_dcgan_rejects_points():
    with pytest.raises(ConfigError, match="image data"):
        _model(DataInfo("ring8", "points", (2,)), "model=dcgan")


@pytest.mark.parametrize("info", [DataInfo("r", "points", (2,)),
                                  DataInfo("d", "image", (1, 8, 8))])
def test_mlp_shapes(info):
    gan = _model(info, "model=mlp", "model.width_g=16", "model.width_d=16")
    x = gan.generate(gan.sample_latent(7, torch.device("cpu")))
    assert x.shape == (7, *info.shape)
    assert gan.discriminate(x).shape == (7,)
    last = gan.G.net[-1]
    # images are squashed into [-1, 1]; points keep PacGAN's unbounded coordinates
    assert isinstance(last, torch.nn.Tanh if info.kind == "image" else torch.nn.Linear)

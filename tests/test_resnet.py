"""The SNGAN / WGAN-GP ResNet at its three resolutions (random weights: shapes and wiring)."""

import pytest
import torch

from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models import build_model
from gancli.models.resnet import DBlock, GBlock, discriminator_widths, generator_widths
from tests.helpers import compose_config


def _resnet(info, *overrides):
    cfg = compose_config(["model=resnet", "model.width_g=16", "model.width_d=16", *overrides])
    return build_model(cfg.model, info)


@pytest.mark.parametrize("resolution,channels", [(32, 3), (48, 3), (64, 1)])
def test_resnet_shapes(resolution, channels):
    info = DataInfo("x", "image", (channels, resolution, resolution))
    gan = _resnet(info)
    x = gan.generate(gan.sample_latent(3, torch.device("cpu")))
    assert x.shape == (3, channels, resolution, resolution)
    assert x.min() >= -1 and x.max() <= 1
    assert gan.discriminate(x).shape == (3,)


def test_block_counts_follow_the_papers():
    info = DataInfo("cifar", "image", (3, 32, 32))
    gan = _resnet(info)
    assert sum(isinstance(m, GBlock) for m in gan.G.modules()) == 3  # 4 -> 8 -> 16 -> 32
    assert sum(isinstance(m, DBlock) for m in gan.D.modules()) == 4
    assert generator_widths(256, 32) == [256] * 4 and discriminator_widths(128, 32) == [128] * 4
    # 48/64: G halves from width_g, D doubles up to width_d (SNGAN's STL-10 nets)
    assert generator_widths(512, 48) == [512, 256, 128, 64]
    assert discriminator_widths(1024, 64) == [64, 128, 256, 512, 1024]


def test_resnet_default_is_sngan_cifar10():
    cfg = compose_config(["model=resnet"]).model
    assert (cfg.z_dim, cfg.width_g, cfg.width_d, cfg.init.value) == (128, 256, 128, "xavier")


def test_resnet_rejects_other_resolutions_and_points():
    with pytest.raises(ConfigError, match="dataset.resolution"):
        _resnet(DataInfo("x", "image", (1, 28, 28)))
    with pytest.raises(ConfigError, match="image data"):
        _resnet(DataInfo("ring8", "points", (2,)))

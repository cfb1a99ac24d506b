from dataclasses import dataclass

import pytest

from gancli.errors import ConfigError
from gancli.registry import DATASETS, LOSSES, MODELS, OPTIMIZERS, Registry


def test_register_get_and_list_sorted():
    reg = Registry("widget")

    @dataclass
    class Cfg:
        name: str = "b"

    @reg.register("b", Cfg)
    def build_b(cfg):
        return "built b"

    reg.register("a")(lambda cfg: "built a")
    assert reg.names() == ["a", "b"]
    entry = reg.get("b")
    assert entry.config is Cfg and entry.builder(Cfg()) == "built b"


def test_duplicate_name_is_refused():
    reg = Registry("widget")
    reg.register("x")(lambda cfg: None)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("x")(lambda cfg: None)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        MODELS.get("stylegan9")
    assert "unknown model 'stylegan9'" in str(err.value)
    assert "dcgan" in str(err.value) and "mlp" in str(err.value)


def test_discovery_finds_every_builtin():
    assert {"mnist5k", "digits", "ring8", "grid25", "mnist", "fashion_mnist", "cifar10",
            "celeba", "folder"} <= set(DATASETS.names())
    assert {"mlp", "dcgan"} <= set(MODELS.names())
    assert "gan" in LOSSES.names()
    assert {"adam", "rmsprop", "sgd"} <= set(OPTIMIZERS.names())

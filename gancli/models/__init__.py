"""Architectures: each module registers a builder (typed config, DataInfo) -> GAN."""

from gancli.data.base import DataInfo
from gancli.models.base import GAN
from gancli.registry import MODELS, discover


def build_model(cfg, info: DataInfo) -> GAN:
    """Build the G/D pair that a typed `model` config block names, for data shaped like info."""
    discover()
    return MODELS.get(cfg.name).builder(cfg, info)


__all__ = ["GAN", "build_model"]

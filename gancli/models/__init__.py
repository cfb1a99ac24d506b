"""Model families: each module registers a builder (typed config, DataInfo) -> Family."""

from gancli.data.base import DataInfo
from gancli.models.base import GAN
from gancli.models.family import Family
from gancli.registry import MODELS, discover


def build_model(cfg, info: DataInfo) -> Family:
    """Build the model family that a typed `model` config block names, for data shaped like
    info."""
    discover()
    return MODELS.get(cfg.name).builder(cfg, info)


__all__ = ["GAN", "Family", "build_model"]

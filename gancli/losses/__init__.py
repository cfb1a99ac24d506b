"""Adversarial objectives: each module registers a builder (typed config) -> GanLoss."""

from gancli.losses.base import GanLoss
from gancli.registry import LOSSES, discover


def build_loss(cfg) -> GanLoss:
    discover()
    return LOSSES.get(cfg.name).builder(cfg)


__all__ = ["GanLoss", "build_loss"]

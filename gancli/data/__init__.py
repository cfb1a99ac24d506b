"""Datasets: each module registers builders that return a `GanData` (see base.py)."""

from gancli.data.base import DataInfo, GanData
from gancli.registry import DATASETS, discover


def build_dataset(cfg) -> GanData:
    """Build the dataset that a typed `dataset` config block names."""
    discover()
    return DATASETS.get(cfg.name).builder(cfg)


__all__ = ["DataInfo", "GanData", "build_dataset"]

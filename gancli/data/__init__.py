"""Datasets: each module registers builders that return a `GanData` (see base.py)."""

from gancli.data.base import DataInfo, GanData
from gancli.data.splits import SplitOptions, apply_splits
from gancli.registry import DATASETS, discover


def build_dataset(cfg) -> GanData:
    """Build the dataset that a typed `dataset` config block names; a config deriving from
    SplitOptions may hold items out and hide labels (dataset.holdout, dataset.labeled)."""
    discover()
    data = DATASETS.get(cfg.name).builder(cfg)
    return apply_splits(data, cfg) if isinstance(cfg, SplitOptions) else data


__all__ = ["DataInfo", "GanData", "build_dataset"]

"""Names used in YAML -> builders. One mechanism for datasets, models, losses and optimizers.

A builder is registered with the dataclass that types its config block:

    @MODELS.register("dcgan", DCGANConfig)
    def build_dcgan(cfg: DCGANConfig, data: DataInfo) -> GAN: ...

Every module in gancli/{data,models,losses} (and gancli/training/optimizers.py) is imported by
`discover()`, so a new variant is one new file (plus its YAML file) and nothing else is edited.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gancli.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., Any]
    config: type | None  # dataclass typing this entry's YAML block; None means no options


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, config: type | None = None):
        def decorator(builder):
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = Entry(name, builder, config)
            return builder

        return decorator

    def names(self) -> list[str]:
        discover()
        return sorted(self._entries)

    def get(self, name: str) -> Entry:
        discover()
        if name not in self._entries:
            raise ConfigError(
                f"unknown {self.kind} '{name}'; choose one of: {', '.join(self.names())}"
            )
        return self._entries[name]


DATASETS = Registry("dataset")
MODELS = Registry("model")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")

_PACKAGES = ("gancli.data", "gancli.models", "gancli.losses", "gancli.training.optimizers")
_discovered = False


def discover() -> None:
    """Import every module of the plug-in packages once, so their decorators run."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for package_name in _PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package_name}.{info.name}")

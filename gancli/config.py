"""The typed config schema, and the validation that runs before any training starts.

The top level (`train`, `device`, `seed`) is typed here. The `dataset`, `model`, `loss` and
`optimizer` blocks are typed by the dataclass each registry entry declares, chosen by the
block's `name`, so a new model brings its own schema with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gancli.errors import ConfigError
from gancli.registry import DATASETS, LOSSES, MODELS, OPTIMIZERS, Registry
from gancli.training.augment import Augment
from gancli.training.ema import EMAConfig
from gancli.training.speed import Precision, Toggle


class DeviceName(Enum):
    auto = "auto"  # cuda when available, else cpu
    cpu = "cpu"
    cuda = "cuda"


@dataclass
class DeviceConfig:
    name: DeviceName = DeviceName.auto
    threads: int | None = None  # CPU threads for torch; None keeps torch's default

    def __post_init__(self):
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"device.threads must be > 0, got {self.threads}")


class NanPolicy(Enum):
    stop = "stop"  # stop the run, naming the step and network; the last good checkpoint stays
    skip = "skip"  # drop that update and count it


class EvalMetric(Enum):
    """What train.eval_every measures; lower is better for each."""

    fid = "fid"  # FID with the Inception network (its weights file must be on disk)
    kid = "kid"
    mnist_fid = "mnist_fid"  # FID in the features of gancli's MNIST classifier: offline, fast
    mnist_kid = "mnist_kid"


@dataclass
class TrainConfig:
    steps: int = 3000  # generator updates
    batch_size: int = 64
    n_critic: int = 1  # discriminator updates per generator update
    sample_every: int = 500
    ckpt_every: int = 1000
    log_every: int = 50
    num_samples: int = 64  # images in each sample grid, drawn from one fixed noise batch
    num_workers: int = 0  # DataLoader workers, for datasets streamed from disk
    metric: str = "d_loss"  # value the entrypoint returns, for sweepers
    keep_last: int = 0  # periodic step_*.pt checkpoints to keep; 0 keeps them all
    auto_resume: bool = False  # continue from <run dir>/checkpoints/last.pt when it exists
    nan_policy: NanPolicy = NanPolicy.stop
    sync_batchnorm: bool = False  # under torchrun: BatchNorm statistics over the global batch
    ema: EMAConfig = field(default_factory=EMAConfig)  # moving average of G, sampled and saved
    # speed (gancli/training/speed.py): each on by default where it is safe
    precision: Precision = Precision.auto  # auto: bf16 on CUDA, fp32 on the CPU
    channels_last: Toggle = Toggle.auto  # NHWC memory format for image models (auto: CUDA, CPU)
    compile: bool = False  # torch.compile G and D (slow start; pays on long GPU runs)
    cudnn_benchmark: bool = True  # let cuDNN pick the fastest convolution algorithms
    reuse_fake: bool = True  # G's update reuses the batch D was just shown (one G pass less)
    # DiffAugment of every image D sees, real and generated (gancli/training/augment.py)
    augment: list[Augment] = field(default_factory=list)
    eval_every: int = 0  # steps between evaluations of eval_metric (0: off); also at the end
    eval_metric: EvalMetric = EvalMetric.fid
    eval_n: int = 2000  # generated (and real) images per evaluation
    eval_inception_weights: str | None = None  # default: torch hub's cache
    histogram_every: int = 0  # steps between weight/gradient histograms in TensorBoard (0: off)

    def __post_init__(self):
        for key in ("steps", "batch_size", "n_critic", "sample_every", "ckpt_every",
                    "log_every", "num_samples"):
            _require_positive(f"train.{key}", getattr(self, key))
        for key in ("num_workers", "keep_last"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key} must be >= 0, got {getattr(self, key)}")
        if self.histogram_every < 0:
            raise ConfigError(f"train.histogram_every must be >= 0 (0 is off), "
                              f"got {self.histogram_every}")
        if self.eval_every < 0:
            raise ConfigError(f"train.eval_every must be >= 0 (0 is off), got {self.eval_every}")
        if self.eval_n < 10:
            raise ConfigError(f"train.eval_n must be >= 10, got {self.eval_n}")


@dataclass
class Config:
    dataset: Any = None
    model: Any = None
    loss: Any = None
    optimizer: Any = None
    device: DeviceConfig = field(default_factory=DeviceConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    resume: str | None = None  # a run directory or checkpoint to continue


GROUPS: dict[str, Registry] = {
    "dataset": DATASETS,
    "model": MODELS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
}


def _require_positive(key: str, value: int | float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def _describe(err: OmegaConfBaseException, prefix: str) -> str:
    key = getattr(err, "full_key", None) or ""
    key = f"{prefix}.{key}" if prefix and key else (key or prefix)
    msg = getattr(err, "msg", None) or str(err)
    msg = msg.split("\n")[0]
    return f"invalid config at '{key}': {msg}" if key else f"invalid config: {msg}"


def _typed(schema: type, block: Any, prefix: str) -> Any:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), block)
        return OmegaConf.to_object(merged)  # builds the dataclass, so __post_init__ checks run
    except OmegaConfBaseException as err:
        raise ConfigError(_describe(err, prefix)) from err


def validate(cfg: DictConfig | dict) -> Config:
    """Check every value of a composed config; return it as typed dataclasses."""
    cfg = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
    top = {k: v for k, v in cfg.items() if k not in GROUPS and k != "hydra"}
    typed: Config = _typed(Config, top, "")
    for group, registry in GROUPS.items():
        block = cfg.get(group)
        if block is None or "name" not in block:
            raise ConfigError(f"config group '{group}' is missing or has no 'name'")
        entry = registry.get(str(block.name))
        setattr(typed, group, _typed(entry.config, block, group))
    return typed


def to_container(cfg: Config) -> dict:
    """A plain dict of builtins (enums as strings), safe for weights_only checkpoints."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)


def from_container(data: dict) -> Config:
    return validate(OmegaConf.create(data))

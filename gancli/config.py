"""The typed config schema, and the validation that runs before any training starts.

The top level (`train`, `device`, `seed`) is typed here. The `dataset`, `model`, `loss` and
`optimizer` blocks are typed by the dataclass each registry entry declares, chosen by the
block's `name`, so a new model brings its own schema with it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import Enum
from importlib.resources import files
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gancli.errors import ConfigError
from gancli.registry import DATASETS, LOSSES, MODELS, OPTIMIZERS, Registry


class Precision(Enum):
    auto = "auto"  # bf16 on a CUDA GPU that supports it, fp32 otherwise
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"  # with a GradScaler per network


class Toggle(Enum):
    auto = "auto"  # channels_last: on for CUDA and the CPU (measured faster on both)
    on = "on"
    off = "off"


class Clock(Enum):
    wall = "wall"  # seconds of real time
    cpu = "cpu"  # this process's CPU seconds (fair on a shared machine)


class Augment(Enum):
    flip = "flip"
    color = "color"  # brightness, saturation and contrast
    translation = "translation"  # shift by up to 1/8 of the size, zero padded
    cutout = "cutout"  # zero one square of half the size
    rotate90 = "rotate90"  # turn by 0, 90, 180 or 270 degrees (square images)


@dataclass
class EMAConfig:
    decay: float | None = None  # e.g. 0.999; null with half_life null: no EMA
    half_life: float | None = None  # in images, e.g. 10000 (StyleGAN's ema_kimg=10)
    start: int = 0  # the copy follows G exactly until this step (BigGAN's ema_start)
    # half_life at most this share of the images seen so far (StyleGAN2-ADA's ema_rampup,
    # 0.05), so early, fast-moving weights are not averaged for long; null: off
    rampup: float | None = None

    def __post_init__(self):
        if self.decay is not None and self.half_life is not None:
            raise ConfigError("set only one of train.ema.decay and train.ema.half_life")
        if self.decay is not None and not 0 <= self.decay < 1:
            raise ConfigError(f"train.ema.decay must be in [0, 1), got {self.decay}")
        require_positive("train.ema.half_life", self.half_life, " images")
        require_positive("train.ema.rampup", self.rampup, " (a share of the images seen)")
        if self.rampup is not None and self.half_life is None:
            raise ConfigError("train.ema.rampup shortens train.ema.half_life, which is not set; "
                              "e.g. train.ema.half_life=10000 train.ema.rampup=0.05")
        if self.start < 0:
            raise ConfigError(f"train.ema.start must be >= 0, got {self.start}")

    @property
    def enabled(self) -> bool:
        return self.decay is not None or self.half_life is not None

    def beta(self, batch_size: int, images_seen: int | None = None) -> float:
        """Weight of the old average at an update of `batch_size` images, `images_seen` in
        all so far (which `rampup` needs)."""
        if self.half_life is not None:
            half_life = self.half_life
            if self.rampup is not None and images_seen is not None:
                half_life = min(half_life, self.rampup * images_seen)
            return 0.5 ** (batch_size / half_life)
        return float(self.decay or 0.0)


class DeviceName(Enum):
    auto = "auto"  # cuda when available, else cpu
    cpu = "cpu"
    cuda = "cuda"


@dataclass
class DeviceConfig:
    name: DeviceName = DeviceName.auto  # auto: cuda when available, else cpu
    # CPU threads for torch: a number, or auto (null too): one per core this process may run
    # on, one per job under a parallel sweep launcher; OpenMP waits passively either way
    threads: str | None = "auto"

    def __post_init__(self):
        if self.threads is None or str(self.threads) == "auto":
            self.threads = "auto"
            return
        try:
            count = int(self.threads)
        except ValueError:
            raise ConfigError(f"device.threads must be auto or a number > 0, got "
                              f"'{self.threads}'") from None
        require_positive("device.threads", count)
        self.threads = str(count)


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
    batch_size: int = 64  # images (or points) per step, over all GPUs
    n_critic: int = 1  # discriminator updates per generator update
    sample_every: int = 500  # steps between sample grids (samples/step_*.png)
    ckpt_every: int = 1000  # steps between checkpoints (checkpoints/step_*.pt)
    log_every: int = 50  # steps between metrics.jsonl / TensorBoard records
    num_samples: int = 64  # images in each sample grid, drawn from one fixed noise batch
    num_workers: int = 0  # DataLoader workers, for datasets streamed from disk
    # value the entrypoint returns, for sweepers; null: the evaluation metric when
    # eval_every > 0, else the model's own (d_loss for GANs, loss for autoencoders)
    metric: str | None = None
    keep_last: int = 0  # periodic step_*.pt checkpoints to keep; 0 keeps them all
    auto_resume: bool = False  # continue from <run dir>/checkpoints/last.pt when it exists
    nan_policy: NanPolicy = NanPolicy.stop  # on a non-finite loss: stop the run, or skip the update
    # nan_policy=skip: stop when more than this share of the updates of the last 100 steps
    # were dropped (the run diverges)
    max_skipped: float = 0.1
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
    # chance that each augment op touches each image: a number in [0, 1], or ada (adapted to
    # hold D's overfitting measure E[sign(D(real))] at ada_target, StyleGAN2-ADA)
    augment_p: str = "1"
    ada_target: float = 0.6  # augment_p=ada: the E[sign(D(real))] it steers towards
    ada_interval: int = 4  # augment_p=ada: steps between adjustments of p
    ada_kimg: float = 500.0  # augment_p=ada: thousands of images for p to go from 0 to 1
    eval_every: int = 0  # steps between evaluations of eval_metric (0: off); also at the end
    eval_metric: EvalMetric = EvalMetric.fid  # what eval_every measures (mnist_*: offline)
    eval_n: int = 2000  # generated (and real) images per evaluation
    eval_inception_weights: str | None = None  # default: torch hub's cache
    histogram_every: int = 0  # steps between weight/gradient histograms in TensorBoard (0: off)
    # stop after this many seconds of this process (null: no limit): the first step that starts
    # past it is the last, saved and exported as train.steps' last is; a resume starts afresh
    max_seconds: float | None = None
    clock: Clock = Clock.wall  # what max_seconds counts: wall (real) or cpu (process CPU) time

    def __post_init__(self):
        for key in ("steps", "batch_size", "n_critic", "sample_every", "ckpt_every",
                    "log_every", "num_samples"):
            require_positive(f"train.{key}", getattr(self, key))
        for key in ("num_workers", "keep_last"):
            require_non_negative(f"train.{key}", getattr(self, key))
        if not 0 <= self.max_skipped <= 1:
            raise ConfigError(f"train.max_skipped must be a fraction in [0, 1], got "
                              f"{self.max_skipped}")
        require_non_negative("train.histogram_every", self.histogram_every, " (0 is off)")
        self._check_augment_p()
        require_non_negative("train.eval_every", self.eval_every, " (0 is off)")
        require_positive("train.max_seconds", self.max_seconds, " seconds (null: no limit)")
        if self.eval_n < 10:
            raise ConfigError(f"train.eval_n must be >= 10, got {self.eval_n}")

    def _check_augment_p(self) -> None:
        if self.augment_p != "ada":
            try:
                p = float(self.augment_p)
            except ValueError:
                p = -1.0
            if not 0 <= p <= 1:
                raise ConfigError(f"train.augment_p must be a number in [0, 1] or ada, got "
                                  f"{self.augment_p}")
        elif not self.augment:
            raise ConfigError("train.augment_p=ada adapts the chance of the ops in "
                              "train.augment, which is empty; e.g. "
                              "train.augment=[flip,rotate90,translation,color]")
        if not 0 <= self.ada_target <= 1:
            raise ConfigError(f"train.ada_target must be in [0, 1], got {self.ada_target}")
        require_positive("train.ada_interval", self.ada_interval)
        require_positive("train.ada_kimg", self.ada_kimg)


@dataclass
class Config:
    dataset: Any = None
    model: Any = None
    loss: Any = None
    optimizer: Any = None
    device: DeviceConfig = field(default_factory=DeviceConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0  # seeds weights, data order, noise and sample grids
    resume: str | None = None  # a run directory or checkpoint to continue


GROUPS: dict[str, Registry] = {
    "dataset": DATASETS,
    "model": MODELS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
}


def group_options(group: str) -> list[str]:
    """The YAML files of config group `group` (conf/<group>/*.yaml), without the suffix."""
    folder = files("gancli.conf") / group
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def require_positive(key: str, value: int | float | None, unit: str = "") -> None:
    """The one check of every setting that must be > 0 (None passes: 'not set')."""
    if value is not None and value <= 0:
        raise ConfigError(f"{key} must be > 0{unit}, got {value}")


def require_non_negative(key: str, value: int | float | None, note: str = "") -> None:
    """The one check of every setting that must be >= 0 (None passes: 'not set')."""
    if value is not None and value < 0:
        raise ConfigError(f"{key} must be >= 0{note}, got {value}")


def comma_separated_numbers(key: str, text, example: str, what: str = "numbers"
                            ) -> list[float]:
    """`key=0.1,0.3,1.0` -> [0.1, 0.3, 1.0]; one line naming the key and an `example` when a
    value is not a number."""
    try:
        return [float(v) for v in str(text).strip("[]() ").split(",")]
    except ValueError:
        raise ConfigError(f"{key} takes {what} separated by commas, e.g. {key}={example}; "
                          f"got '{text}'") from None


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
        message = _describe(err, prefix)
        key = getattr(err, "full_key", None)
        if key and "not in" in message:  # an unknown key: name the nearest ones
            from gancli.usage import schema_keys, suggest

            full = f"{prefix}.{key}" if prefix else key
            message += suggest(full, [k.name for k in schema_keys(schema, f"{prefix}." if prefix
                                                                    else "")])
        raise ConfigError(message) from err


# Keys whose spelling changed (the same idea is spelled the same way in every group): an old
# one, in a YAML file or an override, fails in one line naming the new key.
RENAMED = {
    "model.hidden_g": "model.width_g",
    "model.hidden_d": "model.width_d",
    "model.d.spectral_norm": "model.spectral_norm_d",
}


def current_spelling(config: dict) -> dict:
    """A stored config (an older checkpoint's) with renamed keys under their new names."""
    config = copy.deepcopy(config)
    for old, new in RENAMED.items():
        *parents, leaf = old.split(".")
        chain = [config]
        for key in parents:
            node = chain[-1].get(key) if isinstance(chain[-1], dict) else None
            chain.append(node)
        if not isinstance(chain[-1], dict) or leaf not in chain[-1]:
            continue
        value = chain[-1].pop(leaf)
        for depth in range(len(parents), 0, -1):  # `model.d: {}` once its one key moved
            if not chain[depth]:
                chain[depth - 1].pop(parents[depth - 1])
        *new_parents, new_leaf = new.split(".")
        target = config
        for key in new_parents:
            target = target.setdefault(key, {})
        target[new_leaf] = value
    return config


def check_renamed(key: str) -> None:
    key = key.lstrip("+~")
    if key in RENAMED:
        raise ConfigError(f"{key} was renamed: use {RENAMED[key]}")


def typed_block(group: str, block: Any, prefix: str) -> Any:
    """A block of config group `group` (e.g. a dataset nested in another dataset's config, as
    `dataset.a`), typed and checked by the schema its `name` picks; errors name `prefix`."""
    block = OmegaConf.create(block) if isinstance(block, dict) else block
    if block is None or "name" not in block:
        raise ConfigError(f"{prefix} needs a name, e.g. {prefix}.name=...")
    entry = GROUPS[group].get(str(block.name))
    return _typed(entry.config, block, prefix)


def validate(cfg: DictConfig | dict) -> Config:
    """Check every value of a composed config; return it as typed dataclasses."""
    cfg = OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg
    for group in GROUPS:
        for key in cfg.get(group) or {}:
            check_renamed(f"{group}.{key}")
    top = {k: v for k, v in cfg.items() if k not in GROUPS and k != "hydra"}
    typed: Config = _typed(Config, top, "")
    for group, registry in GROUPS.items():
        block = cfg.get(group)
        if block is None or "name" not in block:
            raise ConfigError(f"config group '{group}' is missing or has no 'name'")
        entry = registry.get(str(block.name))
        setattr(typed, group, _typed(entry.config, _resolved(block, group), group))
    return typed


def escaped(value):
    """Strings with `${` escaped, so OmegaConf keeps them literal: an interpolation such as
    `${oc.env:SECRET}` in a checkpoint is never resolved."""
    if isinstance(value, str):
        return value.replace("\\${", "${").replace("${", "\\${")
    if isinstance(value, dict):
        return {k: escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escaped(v) for v in value]
    return value


def _resolved(block: DictConfig, group: str) -> dict:
    """A group's block with its interpolations resolved where they stand, in the whole config
    (a `${model_preset:...}` in the loss group reads model.preset)."""
    try:  # what is left of `${` after resolving was literal text: it stays literal
        return escaped(OmegaConf.to_container(block, resolve=True))
    except OmegaConfBaseException as err:
        cause = err
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:  # a resolver's own one-line message
            raise ConfigError(str(cause)) from None
        raise ConfigError(_describe(err, group)) from err


_NO_DEFAULT = object()


def _model_preset(key: str, default: Any = _NO_DEFAULT, *, _root_: DictConfig) -> Any:
    """`${model_preset:KEY}` or `${model_preset:KEY,DEFAULT}`: KEY's value in the preset that
    model.preset names, from the PRESETS table of the model's schema (e.g. StyleGAN2's
    cifar and small); DEFAULT when the model has no presets or its preset leaves KEY alone.
    A key set anywhere else (a recipe, the command line) replaces the interpolation."""
    model = _root_.get("model") or {}
    schema = MODELS.get(str(model.get("name"))).config
    presets = getattr(schema, "PRESETS", {})
    preset = model.get("preset")
    if presets and preset not in presets:
        raise ConfigError(f"model.preset must be one of {', '.join(presets)}, got {preset}")
    value = presets.get(preset, {}).get(key, default)
    if value is _NO_DEFAULT:
        raise ConfigError(f"model.preset={preset} of model {model.get('name')} sets no {key}")
    return value


def to_container(cfg: Config) -> dict:
    """A plain dict of builtins (enums as strings), safe for weights_only checkpoints."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)


def from_container(data: dict) -> Config:
    return validate(OmegaConf.create(data))


def _register_resolvers() -> None:
    from gancli.directions import register_resolvers

    register_resolvers()  # ${gancli_direction:...} in conf/hparams_search/*.yaml
    if not OmegaConf.has_resolver("model_preset"):
        OmegaConf.register_new_resolver("model_preset", _model_preset)


_register_resolvers()

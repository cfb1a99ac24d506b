"""What every generative family is to the training core, the sampler and the evaluator.

A family (a GAN variant, an autoencoder, later a translator) is an `nn.Module` that owns:
- its networks (`networks()`, each a direct child module) and the parameter groups it optimises
  (`param_groups()`: the loop builds one optimizer and one schedule per group);
- its update rule for one iteration (`train_step`), which the loop calls with a `StepContext`
  (gancli/training/step.py) that offers the shared machinery: the loss, the optimizer update with
  AMP scaling, clipping and NaN checks, autocast, augmentation;
- what it samples (`sample_latent`, `sample_labels`, `generate`) and the network the loop keeps an
  EMA copy of (`sampler_name`);
- any state of its own, as buffers or `get_extra_state`, so `state_dict()` checkpoints all of it.

Every random draw a family makes while training goes through `randn`, `rand` and `randint`.
During training the loop hands the family a view (gancli/training/distributed.py) whose draws
come from one stream seeded alike on every rank, each rank keeping its slice of the global batch:
N processes then draw exactly what one process would.

Sampling may trade variety for fidelity with `truncation(value)`: by default (BigGAN's trick)
every standard-normal latent entry drawn inside it is redrawn until its magnitude is at most
`value`; a family whose trick acts elsewhere (StyleGAN2: w = w_avg + psi (w - w_avg)) overrides
`truncation` so that its `generate` applies it, leaving the draws alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from gancli.data.base import DataInfo
from gancli.errors import ConfigError


def truncated_normal(shape: tuple[int, ...], threshold: float, device,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal draws of `shape`, each one beyond +-threshold redrawn until it is not
    (BigGAN's truncation trick): the normal distribution restricted to [-threshold, threshold].
    Deterministic for a given generator state."""
    if threshold <= 0:
        raise ConfigError(f"truncation must be > 0, got {threshold}")
    z = torch.randn(shape, device=device, generator=generator)
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), device=device, generator=generator)
        outside = z.abs() > threshold
    return z


class Family(nn.Module):
    # whether samples have the dataset's classes (label= picks one); a family may still draw
    # labels of its own for G (selfcond's clusters) while this stays False
    conditional: bool = False
    sampler_name: str = "G"  # the network that maps latents to samples; EMA averages it
    default_metric: str = "loss"  # what train.metric means when it is not set
    # parameter group -> what error messages call it
    group_names: dict[str, str] = {}
    batch_multiple: int = 1  # each rank's batch must be a multiple of this (PacGAN's packs)
    batch_multiple_reason: str = ""  # the setting that asks for it, for the error message
    # some parameters take no part in some steps (ProGAN's blocks before they grow in):
    # data-parallel training then looks for them each step instead of waiting for gradients
    unused_parameters: bool = False

    def __init__(self, info: DataInfo):
        super().__init__()
        self.info = info

    # --- networks and what is optimised ---------------------------------------------------

    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by attribute name; data-parallel training wraps each one."""
        raise NotImplementedError

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameter group name -> parameters; one optimizer each (optimizer.lr_<name> when
        the optimizer config has it, else optimizer.lr)."""
        raise NotImplementedError

    @property
    def sampler(self) -> nn.Module:
        return getattr(self, self.sampler_name)

    def logged_terms(self) -> set[str]:
        """Keys the update writes into the logged stats (train.metric may name them)."""
        return set()

    # --- random draws: one stream under data-parallel training ----------------------------

    def randn(self, n: int, *shape: int, device, generator=None) -> torch.Tensor:
        """(n, *shape) standard normal draws: one row per sample of the batch; inside
        `truncation(t)`, truncated to [-t, t]."""
        if self._truncation is not None:
            return truncated_normal((n, *shape), self._truncation, device, generator)
        return torch.randn(n, *shape, device=device, generator=generator)

    def rand(self, n: int, *shape: int, device, generator=None) -> torch.Tensor:
        return torch.rand(n, *shape, device=device, generator=generator)

    def randint(self, high: int, n: int, *shape: int, device, generator=None) -> torch.Tensor:
        return torch.randint(high, (n, *shape), device=device, generator=generator)

    # --- sampling -------------------------------------------------------------------------

    _truncation: float | None = None  # set by truncation(); read by randn

    @contextlib.contextmanager
    def truncation(self, value: float | None, cutoff: int | None = None):
        """Samples drawn inside are truncated at `value` (None: not at all). BigGAN's trick:
        each standard-normal latent entry beyond +-value is redrawn. Override this where the
        trick means something else (StyleGAN2's psi in w-space) and `generate` applies it;
        `cutoff` (truncate only the first layers' styles) needs layered styles."""
        if cutoff is not None:
            raise ConfigError(f"truncation_cutoff= truncates the first layers' styles of "
                              f"model=stylegan2; model {type(self).__name__} has none")
        previous, self._truncation = self._truncation, value
        try:
            yield
        finally:
            self._truncation = previous

    @contextlib.contextmanager
    def noise_inputs(self, mode: str | None):
        """StyleGAN2's per-pixel noise while sampling: random | const | none (None: as
        trained). Families without noise inputs accept only None."""
        if mode is not None:
            raise ConfigError(f"noise={mode} sets the noise inputs of model=stylegan2; model "
                              f"{type(self).__name__} has none")
        yield

    def mixing_grid(self, n: int, device: torch.device, seed: int) -> torch.Tensor:
        """A style-mixing grid ((n + 1)^2 images, row-major; StyleGAN2 overrides it)."""
        raise ConfigError(f"mix= draws a style-mixing grid of model=stylegan2; model "
                          f"{type(self).__name__} has no styles")

    def sample_latent(self, n: int, device: torch.device,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def sample_labels(self, n: int, device: torch.device,
                      generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Labels for generated samples (classes, or a family's own, e.g. selfcond's
        clusters); None when G takes none."""
        return None

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None,
                 G: nn.Module | None = None) -> torch.Tensor:
        """Samples in data space; `G` may be another copy of the sampler (the EMA one)."""
        raise NotImplementedError

    def bind(self, data, device: torch.device) -> None:
        """Take from `data` (the run's GanData) what sampling needs besides the weights, e.g. a
        translator's held-out inputs. Called once the data are built: by the loop before
        anything is sampled or evaluated, and when a checkpoint is loaded for sampling."""

    # --- training -------------------------------------------------------------------------

    def train_step(self, ctx, batches: Iterator, step: int, stats: dict | None) -> int:
        """One iteration: draw what it needs from `batches` (real (x, y) pairs on the device),
        update through `ctx.update`; write logged values into `stats` when it is a dict.
        Returns the number of updates nan_policy=skip dropped."""
        raise NotImplementedError

    # --- what a run shows -----------------------------------------------------------------

    def on_export(self, data, device: torch.device) -> dict[str, torch.Tensor]:
        """Called before each sample export: refresh state that sampling needs (a fitted
        prior) and return extra images to save beside the samples, by name."""
        return {}

    def report(self, data) -> dict[str, float]:
        """Measurements of this model on `data` (a GanData, e.g. its held-out items), logged
        with each sample export."""
        return {}

    def code_names(self) -> list[str]:
        """Names of the latent codes `traversal` can vary ([] without codes)."""
        return []

    def traversal(self, code: str, rows: int, steps: int, device: torch.device,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        raise ConfigError(f"traverse= needs a model with latent codes (model=infogan); model "
                          f"{type(self).__name__} has none")

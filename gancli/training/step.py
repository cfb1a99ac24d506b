"""What a family's update rule gets from the training core: the loss, one optimizer update per
parameter group (with fp16 scaling, gradient norms, clipping and the NaN policy), autocast, and
the augmentation of what a discriminator sees. The rule itself is the family's `train_step`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gancli.losses.base import GanLoss
from gancli.training.augment import AdaptiveP
from gancli.training.distributed import finite_on_all_ranks, max_over_ranks


class NonFiniteLoss(Exception):
    def __init__(self, net: str, value: float | str, step: int | None = None):
        self.net, self.value, self.step = net, value, step
        super().__init__(f"{net} loss is {value}")


def grad_norm(params: list[torch.nn.Parameter]) -> float:
    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


@dataclass
class StepOptions:
    n_critic: int = 1
    batch_size: int = 64  # this rank's share of the global batch
    max_grad_norm: float | None = None
    skip_nonfinite: bool = False  # train.nan_policy=skip
    amp_dtype: torch.dtype | None = None  # autocast dtype; None runs in fp32
    reuse_fake: bool = True  # G's update reuses the last D update's generated batch
    freeze_d: bool = False  # no weight gradients for D during G's update (CUDA, no DDP)
    channels_last: bool = False
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # on all D sees (DiffAugment)


class StepContext:
    """Holds what persists between iterations: one GradScaler per parameter group (fp16) and
    the first step each group's loss went non-finite (checked lazily, so the GPU never waits
    on the CPU)."""

    def __init__(self, loss: GanLoss, optimizers: dict[str, torch.optim.Optimizer],
                 options: StepOptions, device: torch.device,
                 group_names: dict[str, str] | None = None, adaptive: AdaptiveP | None = None):
        self.loss, self.optimizers, self.options, self.device = loss, optimizers, options, device
        self.adaptive = adaptive  # train.augment_p=ada
        self.group_names = group_names or {}
        fp16 = options.amp_dtype is torch.float16
        self.scalers = {name: torch.amp.GradScaler(device.type, enabled=fp16)
                        for name in optimizers}
        self._index = {name: i for i, name in enumerate(optimizers)}
        self._others = {name: [p for other, o in optimizers.items() if other != name
                               for g in o.param_groups for p in g["params"]]
                        for name in optimizers}
        self._bad = torch.zeros(len(optimizers), dtype=torch.long, device=device)
        self.updates = 0  # optimizer updates attempted so far (train.max_skipped judges them)

    def autocast(self):
        if self.options.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.options.amp_dtype)

    def fp32(self):
        """Gradient penalties run in fp32: their input gradients underflow in half precision."""
        return torch.autocast(self.device.type, enabled=False)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return self.options.augment(x) if self.options.augment else x

    def observe_real(self, scores: torch.Tensor) -> None:
        """D's raw scores of the real images it was just shown (augmented as it saw them):
        train.augment_p=ada steers the augmentation by their signs."""
        if self.adaptive is not None:
            self.adaptive.observe(scores)

    def end_step(self, step: int, stats: dict | None) -> None:
        """After a family's step: the adaptive augmentation's adjustment, and what to log."""
        if self.adaptive is not None:
            self.adaptive.adjust(step)
            if stats is not None:
                stats.update(augment_p=self.adaptive.augment.p, ada_rt=self.adaptive.r_t)

    def real(self, x: torch.Tensor) -> torch.Tensor:
        """A real batch in the memory format the networks use."""
        if self.options.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def update(self, loss: torch.Tensor, group: str, step: int, stats: dict | None) -> bool:
        """Backpropagate `loss` and step the optimizer of parameter group `group`; False when
        nan_policy=skip dropped the update."""
        opt, scaler = self.optimizers[group], self.scalers[group]
        params = [p for g in opt.param_groups for p in g["params"]]
        self.updates += 1
        opt.zero_grad(set_to_none=True)
        # the other groups' .grad keep their own update's gradients (what histograms show),
        # not this loss's side effect on them (D's, under G's loss, where D is not frozen)
        others = self._others[group]
        kept = [p.grad for p in others]
        for p in others:
            p.grad = None
        scaler.scale(loss).backward()
        for p, grad in zip(others, kept, strict=True):
            p.grad = grad
        scaler.unscale_(opt)  # no-op without fp16; clipping and norms see true gradients
        if stats is not None:
            stats[f"grad_norm_{group}"] = grad_norm(params)
        if self.options.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, self.options.max_grad_norm)
        if self.options.skip_nonfinite:  # needs the answer now: one host sync per update
            if not finite_on_all_ranks(loss):
                opt.zero_grad(set_to_none=True)
                return False
        else:  # remember the first bad step on the device; check_finite() reports it
            i = self._index[group]
            bad = ~torch.isfinite(loss.detach())
            self._bad[i] = torch.where(bad & (self._bad[i] == 0), step, self._bad[i])
        scaler.step(opt)
        scaler.update()
        return True

    def check_finite(self) -> None:
        """Raise NonFiniteLoss naming the network and step of the first NaN/Inf loss. Called
        before anything is logged or saved: a host sync, so not every step."""
        steps = dict(zip(self._index, max_over_ranks(self._bad).tolist(), strict=True))
        bad = {name: s for name, s in steps.items() if s}  # 0: none
        if bad:
            group = min(bad, key=lambda name: (bad[name], self._index[name]))
            raise NonFiniteLoss(self.group_names.get(group, group), "NaN/Inf", bad[group])

    def state_dict(self) -> dict:
        state = {"scalers": {name: s.state_dict() for name, s in self.scalers.items()}}
        if self.adaptive is not None:
            state["adaptive_augment"] = self.adaptive.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        for name, scaler in self.scalers.items():
            scaler.load_state_dict(state["scalers"][name])
        if self.adaptive is not None and "adaptive_augment" in state:
            self.adaptive.load_state_dict(state["adaptive_augment"])

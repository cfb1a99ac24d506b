"""Speed settings (`train.precision`, `train.channels_last`, `train.compile`, ...): each is
on by default only where it is safe, and each can be switched off.

Small GAN networks are bound by launch overhead and memory traffic rather than arithmetic, so
what pays is fewer passes (reusing the generated batch, no weight gradients for D during G's
update), fewer bytes (bf16, channels_last) and fewer launches (fused optimizers, compile).
"""

from __future__ import annotations

import torch

from gancli.config import Precision, Toggle
from gancli.errors import ConfigError


def autocast_dtype(precision: Precision, device: torch.device) -> torch.dtype | None:
    """The dtype forward passes run in under autocast; None for plain fp32."""
    if precision is Precision.auto:
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else None
    return {Precision.fp32: None, Precision.bf16: torch.bfloat16,
            Precision.fp16: torch.float16}[precision]


def enabled(toggle: Toggle, device: torch.device) -> bool:
    # NHWC convolutions: cuDNN's tensor-core kernels on CUDA; oneDNN's on the CPU, where DCGAN
    # and ResNet GANs trained 8-20% faster with it on the 2-core test machine
    return toggle is Toggle.on or (toggle is Toggle.auto and device.type in ("cuda", "cpu"))


def use_channels_last(family) -> None:
    """NHWC weights for image models: convolutions on tensor cores read it without transposes.
    Every module of the family, not only the trained networks: a frozen helper left NCHW (the
    self-conditioned GAN's trunk) would convert each NHWC batch it reads. State-dict keys and
    values are unchanged, so checkpoints do not depend on it."""
    if family.info.kind == "image":
        family.to(memory_format=torch.channels_last)


def check_compilable(compile_on: bool, loss_cfg) -> None:
    """torch.compile's autograd cannot differentiate a gradient again, which the gradient
    penalties do: say so before training rather than fail at the first penalty step."""
    penalties = loss_cfg.double_backward_keys() if compile_on else []
    if penalties:
        raise ConfigError(f"train.compile=true cannot train with {', '.join(penalties)}: "
                          f"the penalty differentiates a gradient again (double backward), "
                          f"which torch.compile does not support; set train.compile=false or "
                          f"{'=0, '.join(penalties)}=0")


def compile_networks(family) -> None:
    """torch.compile each network's forward in place (nn.Module.compile keeps state-dict
    keys)."""
    for network in family.networks().values():
        network.compile()

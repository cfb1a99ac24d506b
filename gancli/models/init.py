"""Weight initialisation schemes, selected by name in a model config."""

from __future__ import annotations

from enum import Enum

from torch import nn


class Init(Enum):
    """Allowed values of `model.init`: the config schema rejects anything else by name."""

    default = "default"  # PyTorch's own
    dcgan = "dcgan"  # normal(0, 0.02), Radford et al.
    xavier = "xavier"
    kaiming = "kaiming"
    orthogonal = "orthogonal"


def init_weights(module: nn.Module, scheme: Init | str) -> None:
    """Initialise conv/linear weights by `scheme`; norm layers get weight 1 (N(1, .02) for dcgan)
    and bias 0. 'default' keeps PyTorch's own initialisation."""
    scheme = Init(scheme).value
    if scheme == "default":
        return
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
            else:
                nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 1.0, 0.02)
            else:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

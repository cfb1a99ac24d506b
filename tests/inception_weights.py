"""Random weights in the FID Inception's file format, for wiring tests with no download.

The weights are RANDOM: tests that use them check that our network, preprocessing and metric
code compute the same numbers as pytorch-fid's on the same file, not that any FID value is
meaningful. The state dict comes from torchvision's Inception-v3 built the way pytorch-fid
builds its model (1008 classes, no aux head), so its key names are independent of ours.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision


def random_fid_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    model = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False,
                                            init_weights=False)
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for key, value in state.items():
        if not value.is_floating_point():
            continue  # num_batches_tracked
        if key.endswith("conv.weight"):  # He init keeps activations O(1) through 94 layers
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=gen) * (2 / fan_in) ** 0.5
        elif key.endswith(("bn.weight", "running_var")):
            state[key] = torch.rand(value.shape, generator=gen) + 0.5
        elif key.endswith(("bn.bias", "running_mean")):
            state[key] = torch.randn(value.shape, generator=gen) * 0.1
        else:  # fc
            state[key] = torch.randn(value.shape, generator=gen) * 0.05
    return state


def write_random_fid_weights(path: Path, seed: int = 0) -> Path:
    torch.save(random_fid_inception_state(seed), path)
    return path

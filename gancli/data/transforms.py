"""Small tensor helpers shared by the dataset modules."""

import torch
import torch.nn.functional as F


def resize_uint8(x: torch.Tensor, resolution: int | None) -> torch.Tensor:
    """Resize uint8 images (N, C, H, W) to resolution x resolution (antialiased bilinear)."""
    if resolution is None or x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    y = F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear",
                      antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8)

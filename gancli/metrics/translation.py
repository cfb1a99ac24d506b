"""`gan eval` on a translation run (model=cyclegan, pix2pix): how well it translates the
held-out test items of each domain.

- FID per direction: translated test inputs against the target domain's test items, in the
  features of the Inception network (`extractor=inception`) or the MNIST classifier (`mnist`).
- Label preservation, when both domains carry class labels: the share of translated images the
  MNIST classifier (gancli/metrics/classifier.py) assigns to the source image's class, for each
  direction and each round trip (cycle_a: A -> B -> A), beside the share for the untranslated
  inputs (`source_*`, the baseline).
- For paired data (pix2pix): L1, PSNR and SSIM of G(a) against its target b, pixels in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gancli.images import to_uint8
from gancli.metrics.extractors import build_extractor, extract
from gancli.metrics.frechet import frechet_distance, gaussian_stats

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # Wang et al. 2004
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2  # (K * data range)^2 for data in [0, 1]


@torch.no_grad()
def translate_all(family, images: torch.Tensor, direction: str, device: torch.device,
                  batch_size: int = 100) -> torch.Tensor:
    """`images` (N, C, H, W) in [-1, 1] translated in batches; float32 on the CPU."""
    out = [family.translate(chunk.to(device), direction).float().cpu()
           for chunk in images.split(batch_size)]
    return torch.cat(out)


def _gaussian_window(channels: int) -> torch.Tensor:
    x = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    g = (g / g.sum()).float()
    return (g[:, None] * g[None, :]).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (N,) of images in [0, 1]: Gaussian 11x11 window (sigma 1.5), constants
    K1 = 0.01, K2 = 0.03, 'valid' windows only, averaged over pixels and channels."""
    c = x.shape[1]
    w = _gaussian_window(c).to(x)

    def blur(t):
        return F.conv2d(t, w, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy = blur(x * x) - mx**2, blur(y * y) - my**2
    cov = blur(x * y) - mx * my
    s = ((2 * mx * my + SSIM_C1) * (2 * cov + SSIM_C2)
         / ((mx**2 + my**2 + SSIM_C1) * (vx + vy + SSIM_C2)))
    return s.flatten(1).mean(dim=1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (N,) in dB of images in [0, 1]."""
    mse = (x - y).pow(2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return -10 * torch.log10(mse)


def paired_scores(fake: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """L1, PSNR and SSIM (means over images) of [-1, 1] images against their targets, both
    mapped to [0, 1]."""
    x, y = (fake.clamp(-1, 1) + 1) / 2, (target.clamp(-1, 1) + 1) / 2
    return {"l1": (x - y).abs().mean().item(), "psnr": psnr(x, y).mean().item(),
            "ssim": ssim(x, y).mean().item()}


def label_preservation(classifier, images: torch.Tensor, labels: torch.Tensor,
                       batch_size: int = 500) -> float:
    """Share of `images` the classifier assigns to `labels`."""
    device = next(classifier.parameters()).device
    predicted = torch.cat([classifier.predict(chunk.to(device)).cpu()
                           for chunk in images.split(batch_size)])
    return (predicted == labels.cpu()).float().mean().item()


def fid(extractor, real: torch.Tensor, fake: torch.Tensor, device, batch_size: int) -> float:
    """Fréchet distance of two [-1, 1] image sets in the extractor's features."""
    def features(images):
        return extract(extractor, to_uint8(images).split(batch_size), device)[0]

    return frechet_distance(*gaussian_stats(features(real)), *gaussian_stats(features(fake)))


def evaluate_translation(family, data, device: torch.device, extractor_name: str = "inception",
                         inception_weights: str | None = None, batch_size: int = 100) -> dict:
    """The measures above for a trained translation family on `data` (a TranslationData)."""
    from gancli.metrics.classifier import load_mnist_classifier

    (a, ya), (b, yb) = data.test_a, data.test_b
    directions = family.directions
    fakes = {"a2b": translate_all(family, a, "a2b", device, batch_size)}
    if "b2a" in directions:
        fakes["b2a"] = translate_all(family, b, "b2a", device, batch_size)
    extractor = build_extractor(extractor_name, device, inception_weights)
    prefix = extractor.metric_prefix
    metrics = {f"{prefix}fid_a2b": fid(extractor, b, fakes["a2b"], device, batch_size)}
    if "b2a" in fakes:
        metrics[f"{prefix}fid_b2a"] = fid(extractor, a, fakes["b2a"], device, batch_size)
    if ya is not None and yb is not None:
        classifier = load_mnist_classifier(device)
        metrics["label_source_a"] = label_preservation(classifier, a, ya)
        metrics["label_a2b"] = label_preservation(classifier, fakes["a2b"], ya)
        if "b2a" in fakes:
            metrics["label_source_b"] = label_preservation(classifier, b, yb)
            metrics["label_b2a"] = label_preservation(classifier, fakes["b2a"], yb)
            back_a = translate_all(family, fakes["a2b"], "b2a", device, batch_size)
            back_b = translate_all(family, fakes["b2a"], "a2b", device, batch_size)
            metrics["label_cycle_a"] = label_preservation(classifier, back_a, ya)
            metrics["label_cycle_b"] = label_preservation(classifier, back_b, yb)
    if data.paired:
        metrics.update(paired_scores(fakes["a2b"], b))
    return {"metrics": metrics, "n_test_a": len(a), "n_test_b": len(b),
            "extractor": extractor.protocol["extractor"], "resize": extractor.protocol["resize"],
            "protocol": extractor.protocol}

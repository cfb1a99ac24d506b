"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B, kept honest by
cycle consistency.

Two generators (G_ab: A -> B, G_ba: B -> A) and two PatchGAN discriminators (D_a judges domain
A, D_b domain B); the networks are in gancli/models/translation.py. One iteration, in the
reference's order: G's update on
    g_ab + g_ba + cycle_a + cycle_b + idt_a + idt_b
with g_ab = the loss's G term on D_b(G_ab(a)) (g_ba alike), cycle_a = lambda_a * |G_ba(G_ab(a))
- a|_1, cycle_b = lambda_b * |G_ab(G_ba(b)) - b|_1, idt_a = lambda_a * lambda_identity *
|G_ba(a) - a|_1 and idt_b = lambda_b * lambda_identity * |G_ab(b) - b|_1 (each logged as it
enters the loss); then one update of both Ds on d_a + d_b, each D shown real images of its
domain and generated ones drawn through an image pool of past fakes (Shrivastava et al. 2017).

The pool is a buffer, so checkpoints carry it; its random choices use the family's `rand`, so
they follow the run's noise stream and a resumed run is exact. Under torchrun each rank keeps
a pool of its own generated images (as the reference does per process).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gancli.config import require_non_negative
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.translation import (
    GArch,
    Translator,
    TranslatorOptions,
    build_generator,
    build_patch_discriminator,
    translation_shape,
)
from gancli.registry import MODELS


@dataclass
class CycleGANConfig(TranslatorOptions):
    name: str = "cyclegan"
    g_arch: GArch = GArch.resnet9  # resnet9 | resnet6 | unet
    lambda_a: float = 10.0  # weight of the cycle term A -> B -> A
    lambda_b: float = 10.0  # weight of the cycle term B -> A -> B
    # weight of the identity terms, relative to lambda_a / lambda_b (0: off)
    lambda_identity: float = 0.5
    pool_size: int = 50  # past generated images each D may be shown again (0: no pool)

    def __post_init__(self):
        super().__post_init__()
        for key in ("lambda_a", "lambda_b", "lambda_identity", "pool_size"):
            require_non_negative(f"model.{key}", getattr(self, key))


class ImagePool(nn.Module):
    """Past generated images. While it fills, each new image is stored and returned; once
    full, with probability 1/2 a new image replaces a random stored one, which is returned in
    its place, else the new image is returned."""

    def __init__(self, size: int, shape: tuple[int, ...]):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    def query(self, images: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """`images` (detached) through the pool; `u` (N, 2) uniform draws in [0, 1) decide:
        u[:, 0] > 1/2 swaps, u[:, 1] picks the stored image."""
        if self.size == 0:
            return images
        out, filled = [], int(self.filled)
        for image, (swap, pick) in zip(images, u.tolist(), strict=True):
            if filled < self.size:
                self.images[filled] = image
                filled += 1
                out.append(image)
            elif swap > 0.5:
                j = min(int(pick * self.size), self.size - 1)
                out.append(self.images[j].clone())
                self.images[j] = image
            else:
                out.append(image)
        self.filled.fill_(filled)
        return torch.stack(out)


class OneCritic:
    """One of the two Ds as the loss's penalties and hooks see a discriminator."""

    def __init__(self, D: nn.Module):
        self.D = D

    def discriminate(self, x, y=None):
        return self.D(x).flatten(1).mean(dim=1)


def l1(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(x.float(), target.float())


class CycleGAN(Translator):
    group_names = {"g": "generators", "d": "discriminators"}
    directions = ("a2b", "b2a")

    def __init__(self, cfg: CycleGANConfig, info: DataInfo):
        super().__init__(info)
        channels, side = translation_shape(info, "cyclegan")
        self.G_ab = build_generator(cfg, channels, channels, side, "cyclegan")
        self.G_ba = build_generator(cfg, channels, channels, side, "cyclegan")
        self.D_a = build_patch_discriminator(cfg, channels, side, "cyclegan")
        self.D_b = build_patch_discriminator(cfg, channels, side, "cyclegan")
        self.pool_a = ImagePool(cfg.pool_size, info.shape)
        self.pool_b = ImagePool(cfg.pool_size, info.shape)
        self.lambda_a, self.lambda_b = cfg.lambda_a, cfg.lambda_b
        self.lambda_identity = cfg.lambda_identity

    def networks(self):
        return {"G_ab": self.G_ab, "G_ba": self.G_ba, "D_a": self.D_a, "D_b": self.D_b}

    def param_groups(self):
        # G first: it updates first, and a NaN in both at one step is reported as G's
        return {"g": [*self.G_ab.parameters(), *self.G_ba.parameters()],
                "d": [*self.D_a.parameters(), *self.D_b.parameters()]}

    def logged_terms(self):
        return {"g_ab", "g_ba", "cycle_a", "cycle_b", "idt_a", "idt_b", "d_a", "d_b",
                "g_loss", "d_loss", "grad_norm_g", "grad_norm_d", "d_penalty"}

    def translate(self, x, direction, G=None):
        if direction == "a2b":
            return (G or self.G_ab)(x)
        return self.G_ba(x)

    def export_grids(self, a, b):
        fake_b, fake_a = self.G_ab(a), self.G_ba(b)
        return {"a2b": torch.cat([a, fake_b]), "b2a": torch.cat([b, fake_a]),
                "cycle_a": torch.cat([a, self.G_ba(fake_b)]),
                "cycle_b": torch.cat([b, self.G_ab(fake_a)])}

    def train_step(self, ctx, batches, step, stats):
        x, _ = next(batches)
        real_a, real_b = self.split(ctx.real(x))
        applied_g, fake_a, fake_b = self._g_update(ctx, real_a, real_b, step, stats)
        applied_d = self._d_update(ctx, real_a, real_b, fake_a, fake_b, step, stats)
        return int(not applied_g) + int(not applied_d)

    def _g_update(self, ctx, real_a, real_b, step, stats):
        if ctx.options.freeze_d:  # no weight gradients for the Ds during G's update
            self.D_a.requires_grad_(False)
            self.D_b.requires_grad_(False)
        try:
            with ctx.autocast():
                fake_b, fake_a = self.G_ab(real_a), self.G_ba(real_b)
                terms = {
                    "g_ab": ctx.loss.g_loss(self.D_b(ctx.augment(fake_b)).float().flatten()),
                    "g_ba": ctx.loss.g_loss(self.D_a(ctx.augment(fake_a)).float().flatten()),
                    "cycle_a": self.lambda_a * l1(self.G_ba(fake_b), real_a),
                    "cycle_b": self.lambda_b * l1(self.G_ab(fake_a), real_b),
                }
                if self.lambda_identity:
                    terms["idt_a"] = (self.lambda_a * self.lambda_identity
                                      * l1(self.G_ba(real_a), real_a))
                    terms["idt_b"] = (self.lambda_b * self.lambda_identity
                                      * l1(self.G_ab(real_b), real_b))
        finally:
            if ctx.options.freeze_d:
                self.D_a.requires_grad_(True)
                self.D_b.requires_grad_(True)
        total = sum(terms.values())
        applied = ctx.update(total, "g", step, stats)
        if stats is not None:
            stats.update({name: term.item() for name, term in terms.items()},
                         g_loss=total.item())
        return applied, fake_a.detach(), fake_b.detach()

    def _d_update(self, ctx, real_a, real_b, fake_a, fake_b, step, stats):
        n = real_a.shape[0]
        # the pools' draws: one (N, 2) batch each, from the run's noise stream
        fake_a = self.pool_a.query(fake_a, self.rand(n, 2, device=real_a.device))
        fake_b = self.pool_b.query(fake_b, self.rand(n, 2, device=real_b.device))
        terms, penalties = {}, []
        for name, D, real, fake in (("d_a", self.D_a, real_a, fake_a),
                                    ("d_b", self.D_b, real_b, fake_b)):
            with ctx.autocast():
                seen_real, seen_fake = ctx.augment(real), ctx.augment(fake)
                terms[name] = ctx.loss.d_loss(D(seen_real).float().flatten(),
                                              D(seen_fake).float().flatten())
            with ctx.fp32():
                penalty = ctx.loss.d_penalty(OneCritic(D), seen_real.float(), seen_fake.float(),
                                             None, step - 1)
            if penalty is not None:
                penalties.append(penalty)
        total = sum(terms.values()) + sum(penalties)
        applied = ctx.update(total, "d", step, stats)
        if stats is not None:
            stats.update({name: term.item() for name, term in terms.items()},
                         d_loss=(terms["d_a"] + terms["d_b"]).item())
            if penalties:
                stats["d_penalty"] = sum(penalties).item()
        if applied:
            ctx.loss.after_d_step(OneCritic(self.D_a))
            ctx.loss.after_d_step(OneCritic(self.D_b))
        return applied


@MODELS.register("cyclegan", CycleGANConfig)
def build_cyclegan(cfg: CycleGANConfig, info: DataInfo) -> CycleGAN:
    if info.kind != "image":
        raise ConfigError(f"model cyclegan needs images; dataset {info.name} is {info.kind}")
    return CycleGAN(cfg, info)

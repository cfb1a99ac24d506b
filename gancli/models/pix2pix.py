"""pix2pix (Isola et al. 2017): paired translation A -> B with a conditional PatchGAN.

G_ab (a U-Net by default; the networks are in gancli/models/translation.py) maps an input a to
b; D judges the pair (a, b) stacked along the channels, so it sees whether the output fits its
input. One iteration, in the reference's order: D's update on d_loss, the loss's D term on
(a, b) against (a, G_ab(a)); then G's update on g_gan + l1, with g_gan the loss's G term on
the updated D's scores of (a, G_ab(a)) and l1 = lambda_l1 * |G_ab(a) - b|_1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gancli.config import require_non_negative
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.cyclegan import OneCritic, l1
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
class Pix2PixConfig(TranslatorOptions):
    name: str = "pix2pix"
    g_arch: GArch = GArch.unet  # unet | resnet9 | resnet6
    dropout: float = 0.5  # dropout in G (the reference's noise source for pix2pix)
    lambda_l1: float = 100.0  # weight of the L1 distance to the paired target

    def __post_init__(self):
        super().__post_init__()
        require_non_negative("model.lambda_l1", self.lambda_l1)


class Pix2Pix(Translator):
    group_names = {"d": "discriminator", "g": "generator"}

    def __init__(self, cfg: Pix2PixConfig, info: DataInfo):
        super().__init__(info)
        channels, side = translation_shape(info, "pix2pix")
        self.G_ab = build_generator(cfg, channels, channels, side, "pix2pix")
        self.D = build_patch_discriminator(cfg, 2 * channels, side, "pix2pix")
        self.lambda_l1 = cfg.lambda_l1

    def networks(self):
        return {"G_ab": self.G_ab, "D": self.D}

    def param_groups(self):
        # D first: it updates first, and a NaN in both at one step is reported as D's
        return {"d": list(self.D.parameters()), "g": list(self.G_ab.parameters())}

    def logged_terms(self):
        return {"g_gan", "l1", "g_loss", "d_loss", "grad_norm_g", "grad_norm_d", "d_penalty"}

    def translate(self, x, direction, G=None):
        if direction != "a2b":
            raise ConfigError("model pix2pix translates one way: direction=a2b")
        return (G or self.G_ab)(x)

    def export_grids(self, a, b):
        return {"a2b": torch.cat([a, self.G_ab(a)]), "targets": torch.cat([a, b])}

    def train_step(self, ctx, batches, step, stats):
        x, _ = next(batches)
        real_a, real_b = self.split(ctx.real(x))
        with ctx.autocast():
            fake_b = self.G_ab(real_a)
        applied_d = self._d_update(ctx, real_a, real_b, fake_b.detach(), step, stats)
        applied_g = self._g_update(ctx, real_a, real_b, fake_b, step, stats)
        return int(not applied_d) + int(not applied_g)

    def _d_update(self, ctx, real_a, real_b, fake_b, step, stats):
        with ctx.autocast():
            seen_real = ctx.augment(torch.cat([real_a, real_b], dim=1))
            seen_fake = ctx.augment(torch.cat([real_a, fake_b], dim=1))
            d_loss = ctx.loss.d_loss(self.D(seen_real).float().flatten(),
                                     self.D(seen_fake).float().flatten())
        with ctx.fp32():
            penalty = ctx.loss.d_penalty(OneCritic(self.D), seen_real.float(),
                                         seen_fake.float(), None, step - 1)
        total = d_loss if penalty is None else d_loss + penalty
        applied = ctx.update(total, "d", step, stats)
        if stats is not None:
            stats["d_loss"] = d_loss.item()
            if penalty is not None:
                stats["d_penalty"] = penalty.item()
        if applied:
            ctx.loss.after_d_step(OneCritic(self.D))
        return applied

    def _g_update(self, ctx, real_a, real_b, fake_b, step, stats):
        if ctx.options.freeze_d:
            self.D.requires_grad_(False)
        try:
            with ctx.autocast():
                seen = ctx.augment(torch.cat([real_a, fake_b], dim=1))
                g_gan = ctx.loss.g_loss(self.D(seen).float().flatten())
                distance = self.lambda_l1 * l1(fake_b, real_b)
        finally:
            if ctx.options.freeze_d:
                self.D.requires_grad_(True)
        total = g_gan + distance
        applied = ctx.update(total, "g", step, stats)
        if stats is not None:
            stats.update(g_gan=g_gan.item(), l1=distance.item(), g_loss=total.item())
        return applied


@MODELS.register("pix2pix", Pix2PixConfig)
def build_pix2pix(cfg: Pix2PixConfig, info: DataInfo) -> Pix2Pix:
    if info.kind != "image":
        raise ConfigError(f"model pix2pix needs images; dataset {info.name} is {info.kind}")
    return Pix2Pix(cfg, info)

"""InfoGAN (Chen et al. 2016): G's input is noise plus latent codes, and a Q head sharing D's
trunk recovers the codes from G's samples; maximising the recovered information (a lower bound
on the mutual information between codes and samples) makes the codes mean something.

Codes are named c1, c2, ... in order: first the categorical ones (model.categorical lists their
sizes), then the continuous ones (model.continuous of them, uniform on [-1, 1]). The default,
categorical=[10] and continuous=2, is the paper's MNIST setting: c1 picks one of 10 values, c2
and c3 vary continuously. `gan sample ckpt=... traverse=c1` draws a grid varying one code.

G's latent is [noise | one-hot of each categorical code | continuous codes]. D's and G's losses
both add -E log Q(c | G(z, c)): cross-entropy for categorical codes (`*_info_cat`, weighted by
model.info_weight) and a unit-variance Gaussian's 1/2 (c - mu)^2 for continuous ones
(`*_info_cont`, weighted by model.continuous_weight).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from gancli.config import require_non_negative, require_positive
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.losses.auxiliary import categorical_code_loss, continuous_code_loss
from gancli.models.backbone import (
    BackboneOptions,
    build_backbone,
    finish_heads,
    one_hot,
    require_single_samples,
)
from gancli.models.base import GAN
from gancli.registry import MODELS

TRAVERSE_RANGE = 2.0  # a continuous code runs over [-2, 2] in a traversal (the paper's figures)


@dataclass
class InfoGANConfig(BackboneOptions):
    name: str = "infogan"
    categorical: list[int] = field(default_factory=lambda: [10])  # sizes of c1, c2, ...
    continuous: int = 2  # uniform(-1, 1) codes, named after the categorical ones
    info_weight: float = 1.0  # lambda of the categorical codes' term
    continuous_weight: float = 1.0  # lambda of the continuous codes' term
    q_hidden: int = 128  # width of the Q head's hidden layer

    def __post_init__(self):
        super().__post_init__()
        if any(k < 2 for k in self.categorical):
            raise ConfigError(f"model.categorical sizes must be >= 2, got {self.categorical}")
        require_non_negative("model.continuous", self.continuous)
        if not self.categorical and not self.continuous:
            raise ConfigError("model infogan needs at least one code: set model.categorical "
                              "or model.continuous")
        for key in ("info_weight", "continuous_weight"):
            require_non_negative(f"model.{key}", getattr(self, key))
        require_positive("model.q_hidden", self.q_hidden)


class QDiscriminator(nn.Module):
    """(score, Q's outputs) from one pass through the backbone's trunk. Q's outputs are the
    logits of each categorical code, then the means of the continuous codes."""

    def __init__(self, backbone: nn.Module, code_outputs: int, hidden: int):
        super().__init__()
        self.backbone = backbone
        self.q = nn.Sequential(nn.Linear(backbone.feature_dim, hidden), nn.LeakyReLU(0.2),
                               nn.Linear(hidden, code_outputs))

    def forward(self, x):
        features = self.backbone.features(x)
        return self.backbone.score(features), self.q(features)


class InfoGAN(GAN):
    def __init__(self, *args, categorical: list[int], continuous: int, info_weight: float,
                 continuous_weight: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.categorical, self.continuous = list(categorical), continuous
        self.info_weight, self.continuous_weight = info_weight, continuous_weight

    @property
    def code_dim(self) -> int:
        return sum(self.categorical) + self.continuous

    def code_names(self) -> list[str]:
        return [f"c{i + 1}" for i in range(len(self.categorical) + self.continuous)]

    def sample_latent(self, n, device, generator=None):
        noise = self.randn(n, self.z_dim, device=device, generator=generator)
        parts = [noise]
        for k in self.categorical:
            code = self.randint(k, n, device=device, generator=generator)
            parts.append(one_hot(code, k))
        parts.append(self.rand(n, self.continuous, device=device, generator=generator) * 2 - 1)
        return torch.cat(parts, dim=1)

    def codes(self, latent: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(index of each categorical code, continuous codes (N, continuous)) of latents."""
        start, cats = self.z_dim, []
        for k in self.categorical:
            cats.append(latent[:, start:start + k].argmax(dim=1))
            start += k
        return cats, latent[:, start:]

    def judge(self, x, y=None):
        score, q = self.D(x)
        return score, {"codes": q}

    def info_terms(self, judged, prefix: str) -> dict[str, torch.Tensor]:
        q = self.head(judged, "codes")
        cats, cont = self.codes(judged.z)
        terms, start = {}, 0
        if self.categorical:
            cat_loss = 0
            for k, code in zip(self.categorical, cats, strict=True):
                cat_loss = cat_loss + categorical_code_loss(q[:, start:start + k], code)
                start += k
            terms[f"{prefix}_info_cat"] = self.info_weight * cat_loss
        if self.continuous:
            terms[f"{prefix}_info_cont"] = self.continuous_weight * continuous_code_loss(
                q[:, start:], cont)
        return terms

    def d_extra_loss(self, real, fake):
        return self.info_terms(fake, "d")  # Q (D's head and trunk) learns to read the codes

    def g_extra_loss(self, fake):
        return self.info_terms(fake, "g")  # and G learns to make them readable

    def traversal(self, code, rows, steps, device, generator=None):
        names = self.code_names()
        if code not in names:
            raise ConfigError(f"traverse={code}: this InfoGAN's codes are {', '.join(names)} "
                              f"(c1..c{len(self.categorical)} categorical, then continuous)")
        index = names.index(code)
        base = self.sample_latent(rows, device, generator)
        if index < len(self.categorical):  # every value of a categorical code
            k = self.categorical[index]
            start = self.z_dim + sum(self.categorical[:index])
            latent = base.repeat_interleave(k, dim=0)
            latent[:, start:start + k] = one_hot(torch.arange(k, device=device).repeat(rows), k)
            return latent
        column = self.z_dim + sum(self.categorical) + index - len(self.categorical)
        values = torch.linspace(-TRAVERSE_RANGE, TRAVERSE_RANGE, steps, device=device)
        latent = base.repeat_interleave(steps, dim=0)
        latent[:, column] = values.repeat(rows)
        return latent


@MODELS.register("infogan", InfoGANConfig)
def build_infogan(cfg: InfoGANConfig, info: DataInfo) -> InfoGAN:
    require_single_samples(cfg, "infogan")
    code_dim = sum(cfg.categorical) + cfg.continuous
    net = build_backbone(cfg, info, extra_inputs=code_dim)
    D = QDiscriminator(net.D, code_dim, cfg.q_hidden)
    finish_heads(D.q, net, cfg)
    return InfoGAN(net.G, D, net.z_dim, info, categorical=cfg.categorical,
                   continuous=cfg.continuous, info_weight=cfg.info_weight,
                   continuous_weight=cfg.continuous_weight)

"""Autoencoder and VAE baselines: the other unsupervised generative models, scored on the same
scale as the GANs (`gan sample`, `gan eval`), trained by the same loop.

Both share one encoder/decoder pair: for images the decoder is DCGAN's generator and the encoder
DCGAN's discriminator trunk ending in a linear layer to the code; for 2D points, MLPs.

- `model=ae` (a plain autoencoder) learns to reconstruct; it has no prior, so its samples come
  from a density fitted to the codes of the training data (`model.prior`: one Gaussian, or a
  mixture of `model.prior_components`, fitted with scikit-learn), refitted at each sample export
  and stored as buffers, so the checkpoint carries it.
- `model=vae` (Kingma & Welling 2014): the encoder gives the mean and log-variance of
  q(z | x); loss = reconstruction + beta x KL(q(z | x) || N(0, I)), the KL weight ramped up over
  `model.kl_warmup` steps; samples decode z ~ N(0, I). Logged: `recon`, `kl` and `elbo`
  (-(recon + kl), per sample: a lower bound on log p(x) when recon is bce).

Reconstruction (`model.recon`, summed over each sample's values, averaged over the batch): `bce`
reads the decoder's [-1, 1] output as Bernoulli means (x + 1) / 2 (images only), `mse` and `l1`
compare values directly. `auto` is bce for images and mse for points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gancli.config import require_non_negative, require_positive
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.dcgan import BASE_SIZE, DCGANDiscriminator, DCGANGenerator
from gancli.models.family import Family
from gancli.models.init import Init, init_weights
from gancli.models.mlp import MLPConfig, MLPDiscriminator, MLPGenerator
from gancli.models.options import square_images
from gancli.registry import MODELS

PRIOR_FIT_ITEMS = 5000  # training items whose codes the AE's prior is fitted to
RECONSTRUCTIONS_SHOWN = 8


class AEArch(Enum):
    auto = "auto"  # conv for images of 28, 32 or 64 pixels, mlp otherwise
    conv = "conv"
    mlp = "mlp"


class Recon(Enum):
    auto = "auto"  # bce for images, mse for points
    bce = "bce"
    mse = "mse"
    l1 = "l1"


class Prior(Enum):
    gaussian = "gaussian"
    gmm = "gmm"


@dataclass
class AutoencoderOptions:
    name: str = "ae"
    arch: AEArch = AEArch.auto  # conv for images it fits, else mlp
    z_dim: int | None = None  # code dimensions; null: 16 for images, 2 for points
    width_g: int | None = None  # decoder (the sampler) width; null: 32 conv, 128 mlp
    width_e: int | None = None  # encoder width; null: as width_g
    recon: Recon = Recon.auto  # reconstruction loss; auto: bce for images, mse for points

    def __post_init__(self):
        for key in ("z_dim", "width_g", "width_e"):
            require_positive(f"model.{key}", getattr(self, key))


@dataclass
class AEConfig(AutoencoderOptions):
    name: str = "ae"
    prior: Prior = Prior.gaussian  # density fitted to the training codes, sampled from
    prior_components: int = 10  # Gaussians in the mixture (prior=gmm)

    def __post_init__(self):
        super().__post_init__()
        require_positive("model.prior_components", self.prior_components)


@dataclass
class VAEConfig(AutoencoderOptions):
    name: str = "vae"
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017, when > 1)
    kl_warmup: int = 0  # steps over which the KL weight ramps linearly from 0 to beta

    def __post_init__(self):
        super().__post_init__()
        require_non_negative("model.beta", self.beta)
        require_non_negative("model.kl_warmup", self.kl_warmup, " (0 is off)")


class Encoder(nn.Module):
    """A trunk of feature layers, then one linear layer to `out` numbers per sample."""

    def __init__(self, trunk: nn.Module, feature_dim: int, out: int):
        super().__init__()
        self.trunk, self.head = trunk, nn.Linear(feature_dim, out)

    def forward(self, x):
        return self.head(self.trunk(x).flatten(1))


def _networks(cfg: AutoencoderOptions, info: DataInfo, code_outputs: int):
    """(encoder, decoder, z_dim) for `info`'s data."""
    arch = cfg.arch.value
    if cfg.arch is AEArch.auto:  # conv where DCGAN's networks fit the images
        fits = info.kind == "image" and info.shape[1] == info.shape[2] in BASE_SIZE
        arch = "conv" if fits else "mlp"
    z_dim = cfg.z_dim or (16 if info.kind == "image" else 2)
    width_g = cfg.width_g or (32 if arch == "conv" else 128)
    width_e = cfg.width_e or width_g
    if arch == "conv":
        channels, size = square_images(cfg.name, info)
        decoder = DCGANGenerator(z_dim, width_g, channels, size)
        critic = DCGANDiscriminator(width_e, channels, size)
        trunk = nn.Sequential(*list(critic.net)[:-1])  # all but the score layer
        init = Init.dcgan
    else:
        mlp = replace(MLPConfig(), z_dim=z_dim, width_g=width_g, width_d=width_e)
        decoder = MLPGenerator(mlp, info)
        critic = MLPDiscriminator(mlp, info)
        trunk = nn.Sequential(nn.Flatten(), *list(critic.net)[:-1])
        init = Init.default
    encoder = Encoder(trunk, critic.feature_dim, z_dim * code_outputs)
    init_weights(encoder, init)
    init_weights(decoder, init)
    return encoder, decoder, z_dim


def _recon_kind(recon: Recon, info: DataInfo, model: str) -> str:
    if recon is Recon.auto:
        return "bce" if info.kind == "image" else "mse"
    if recon is Recon.bce and info.kind != "image":
        raise ConfigError(f"model.recon=bce needs images in [-1, 1]; dataset {info.name} has "
                          f"{info.kind}: use model.recon=mse or l1 with model {model}")
    return recon.value


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-sample reconstruction error, summed over each sample's values: shape (N,)."""
    if kind == "bce":  # Bernoulli means (x_hat + 1) / 2 for targets (x + 1) / 2
        per_value = F.binary_cross_entropy((x_hat.float() + 1) / 2, (x.float() + 1) / 2,
                                           reduction="none")
    elif kind == "mse":
        per_value = (x_hat.float() - x.float()).pow(2)
    else:
        per_value = (x_hat.float() - x.float()).abs()
    return per_value.flatten(1).sum(dim=1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, in closed form: shape (N,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


class Autoencoder(Family):
    sampler_name = "decoder"
    group_names = {"model": "autoencoder"}

    def __init__(self, encoder: nn.Module, decoder: nn.Module, z_dim: int, info: DataInfo,
                 recon: str):
        super().__init__(info)
        self.encoder, self.decoder, self.z_dim, self.recon = encoder, decoder, z_dim, recon

    def networks(self):
        return {"encoder": self.encoder, "decoder": self.decoder}

    def param_groups(self):
        return {"model": [*self.encoder.parameters(), *self.decoder.parameters()]}

    def logged_terms(self):
        return {"loss", "recon", "grad_norm_model"}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of each sample (the VAE's: its posterior mean)."""
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))

    def terms(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """The loss to minimise ("loss") and the terms to log, each a batch mean."""
        recon = reconstruction_loss(self.decoder(self.encoder(x)), x, self.recon).mean()
        return {"loss": recon, "recon": recon}

    def train_step(self, ctx, batches, step, stats):
        x, _ = next(batches)
        with ctx.autocast():
            terms = self.terms(ctx.real(x), step)
        applied = ctx.update(terms["loss"].float(), "model", step, stats)
        if stats is not None:
            stats.update({name: value.item() for name, value in terms.items()})
        return int(not applied)

    def on_export(self, data, device):
        if self.info.kind != "image":
            return {}
        real = data.real_samples(RECONSTRUCTIONS_SHOWN, 0).to(device)
        return {"reconstructions": torch.cat([real, self.reconstruct(real).float()])}


class AE(Autoencoder):
    """Samples decode draws from a density fitted to the training codes: component k (one for
    a Gaussian) is chosen by the latent's last entry, u ~ U[0, 1), against the cumulative
    weights, and the code is mean_k + L_k eps with eps ~ N(0, I) (L_k: Cholesky factor)."""

    def __init__(self, *args, prior: Prior, components: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.prior = prior
        k = components if prior is Prior.gmm else 1
        self.register_buffer("prior_weights", torch.full((k,), 1.0 / k))
        self.register_buffer("prior_means", torch.zeros(k, self.z_dim))
        self.register_buffer("prior_scale_tril", torch.eye(self.z_dim).repeat(k, 1, 1))

    def sample_latent(self, n, device, generator=None):
        eps = self.randn(n, self.z_dim, device=device, generator=generator)
        return torch.cat([eps, self.rand(n, 1, device=device, generator=generator)], dim=1)

    def codes(self, latent: torch.Tensor) -> torch.Tensor:
        eps, u = latent[:, :-1], latent[:, -1].clamp(0, 1)
        cumulative = self.prior_weights.cumsum(0)
        k = torch.searchsorted(cumulative, u.contiguous()).clamp(max=len(cumulative) - 1)
        return self.prior_means[k] + (self.prior_scale_tril[k] @ eps.unsqueeze(-1)).squeeze(-1)

    def generate(self, z, y=None, G=None):
        return (G or self.decoder)(self.codes(z))

    @torch.no_grad()
    def fit_prior(self, codes: torch.Tensor) -> None:
        """Fit the prior to (N, z_dim) codes (float64 on the CPU, seeded: reproducible)."""
        from sklearn.mixture import GaussianMixture

        k = len(self.prior_weights)
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-5, random_state=0)
        gmm.fit(codes.double().cpu().numpy())
        cov = torch.from_numpy(np.ascontiguousarray(gmm.covariances_))
        self.prior_weights.copy_(torch.from_numpy(gmm.weights_))
        self.prior_means.copy_(torch.from_numpy(gmm.means_))
        self.prior_scale_tril.copy_(torch.linalg.cholesky(cov))

    def on_export(self, data, device):
        real = data.real_samples(min(PRIOR_FIT_ITEMS, len(data)), 0)
        codes = torch.cat([self.encode(chunk.to(device)).float().cpu()
                           for chunk in real.split(500)])
        self.fit_prior(codes)
        return super().on_export(data, device)


class VAE(Autoencoder):
    def __init__(self, *args, beta: float, kl_warmup: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.beta, self.kl_warmup = beta, kl_warmup

    def logged_terms(self):
        return super().logged_terms() | {"kl", "elbo", "kl_weight"}

    def sample_latent(self, n, device, generator=None):
        return self.randn(n, self.z_dim, device=device, generator=generator)

    def generate(self, z, y=None, G=None):
        return (G or self.decoder)(z)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode(self, x):
        return self.posterior(x)[0]

    def kl_weight(self, step: int) -> float:
        ramp = min(1.0, step / self.kl_warmup) if self.kl_warmup else 1.0
        return self.beta * ramp

    def terms(self, x, step):
        mu, logvar = self.posterior(x)
        eps = self.randn(x.shape[0], self.z_dim, device=x.device)  # the run's one stream
        z = mu + (0.5 * logvar).exp() * eps  # the reparameterisation trick
        recon = reconstruction_loss(self.decoder(z), x, self.recon).mean()
        kl = gaussian_kl(mu.float(), logvar.float()).mean()
        weight = self.kl_weight(step)
        return {"loss": recon + weight * kl, "recon": recon, "kl": kl,
                "elbo": -(recon + kl).detach(), "kl_weight": torch.tensor(weight)}


@MODELS.register("ae", AEConfig)
def build_ae(cfg: AEConfig, info: DataInfo) -> AE:
    encoder, decoder, z_dim = _networks(cfg, info, code_outputs=1)
    return AE(encoder, decoder, z_dim, info, recon=_recon_kind(cfg.recon, info, "ae"),
              prior=cfg.prior, components=cfg.prior_components)


@MODELS.register("vae", VAEConfig)
def build_vae(cfg: VAEConfig, info: DataInfo) -> VAE:
    encoder, decoder, z_dim = _networks(cfg, info, code_outputs=2)
    return VAE(encoder, decoder, z_dim, info, recon=_recon_kind(cfg.recon, info, "vae"),
               beta=cfg.beta, kl_warmup=cfg.kl_warmup)



"""Self-conditioned GAN (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned
GANs"): a class-conditional GAN whose classes are clusters of D's own features, so it needs
no labels (the dataset's are ignored) and stays an unconditional generator.

- Before the first step, and every `model.recluster_every` steps, D's trunk features of a fixed
  pool of `model.cluster_items` real items are clustered by k-means into `model.clusters`
  groups. The first clustering reads the freshly initialised D; each later one starts from the
  previous assignment's means, so cluster c stays, as far as the data allow, cluster c.
- A frozen copy of D's trunk, taken at that clustering, labels each real batch by its nearest
  centroid; D(x, c) is a projection discriminator over the clusters and G(z, c) takes c as
  cGAN does (model.g_conditioning).
- Generated samples draw c from the pool's cluster shares: G must fill each cluster as often as
  the data do, which is what spreads its samples over all the data's modes.

Sampling draws c the same way (`sample_labels`), so `gan sample` and every metric see the
unconditional generator. The clustering state (frozen trunk, centroids, shares) is in the
checkpoint: a resumed run reclusters at the same steps from the same weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from gancli.config import require_non_negative, require_positive
from gancli.data.base import DataInfo
from gancli.errors import ConfigError, GanError
from gancli.models.backbone import (
    build_backbone,
    finish_heads,
    require_single_samples,
    resolve_arch,
)
from gancli.models.base import GAN
from gancli.models.cgan import ProjectionDiscriminator
from gancli.models.conditioning import (
    ConditionalGenerator,
    ConditionalOptions,
    GConditioning,
    resolve_conditioning,
)
from gancli.models.kmeans import kmeans, nearest
from gancli.registry import MODELS

POOL_SEED = 0x636C75  # "clu": the real items clustered, the same in every run
FEATURE_BATCH = 500  # pool items through the frozen trunk at a time


@dataclass
class SelfCondConfig(ConditionalOptions):
    name: str = "selfcond"
    clusters: int = 100  # k of k-means: G's and D's classes
    cluster_items: int = 10000  # real items clustered (a fixed, seeded subset of the data)
    recluster_every: int = 2000  # steps between clusterings; 0: cluster once, before training
    kmeans_iters: int = 20  # Lloyd iterations at most per clustering

    def __post_init__(self):
        super().__post_init__()
        if self.clusters < 2:
            raise ConfigError(f"model.clusters must be >= 2, got {self.clusters}")
        if self.cluster_items < self.clusters:
            raise ConfigError(f"model.cluster_items ({self.cluster_items}) must be at least "
                              f"model.clusters ({self.clusters})")
        require_non_negative("model.recluster_every", self.recluster_every)
        require_positive("model.kmeans_iters", self.kmeans_iters)


class SelfConditionedGAN(GAN):
    def __init__(self, G: nn.Module, D: ProjectionDiscriminator, z_dim: int, info: DataInfo,
                 cfg: SelfCondConfig):
        super().__init__(G, D, z_dim, info)
        self.clusters, self.cluster_items = cfg.clusters, cfg.cluster_items
        self.recluster_every, self.kmeans_iters = cfg.recluster_every, cfg.kmeans_iters
        # D's trunk as of the last clustering: it labels real items; never trained
        self.trunk = copy.deepcopy(D.backbone).requires_grad_(False)
        self.register_buffer("centroids", torch.zeros(cfg.clusters, D.backbone.feature_dim))
        self.register_buffer("shares", torch.full((cfg.clusters,), 1 / cfg.clusters))
        self.register_buffer("clustered_at", torch.tensor(-1))  # step; -1: not yet
        self.pool: torch.Tensor | None = None  # set by bind(); not checkpointed

    def bind(self, data, device):
        self.pool = data.real_samples(self.cluster_items, seed=POOL_SEED).to(device)
        if len(self.pool) < self.clusters:
            raise ConfigError(f"model.clusters={self.clusters} is more than the dataset's "
                              f"{len(self.pool)} items; lower model.clusters")

    # --- the clusters -----------------------------------------------------------------------

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.trunk.eval()  # BatchNorm with D's running statistics: a batch's labels are its own
        return torch.cat([self.trunk.features(part).float() for part in x.split(FEATURE_BATCH)])

    @torch.no_grad()
    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Each real item's cluster: the nearest centroid to its frozen-trunk features."""
        return nearest(self.features(x), self.centroids)

    def recluster_due(self, step: int) -> bool:
        if int(self.clustered_at) < 0:
            return True
        return self.recluster_every > 0 and (step - 1) % self.recluster_every == 0

    @torch.no_grad()
    def recluster(self, step: int) -> None:
        """Cluster the pool on D's current trunk features, starting from the previous
        clustering when there is one; seeded by the step, so a resumed run repeats it."""
        if self.pool is None:
            raise GanError("the self-conditioned GAN clusters real items: bind(data) first")
        previous = self.assign(self.pool) if int(self.clustered_at) >= 0 else None
        live = getattr(self.D, "module", self.D)  # under data-parallel training, DDP's module
        self.trunk.load_state_dict(live.backbone.state_dict())
        gen = torch.Generator(self.centroids.device).manual_seed(step)
        centroids, labels = kmeans(self.features(self.pool), self.clusters, self.kmeans_iters,
                                   gen, init_labels=previous)
        self.centroids.copy_(centroids)
        self.shares.copy_(torch.bincount(labels, minlength=self.clusters) / len(labels))
        self.clustered_at.fill_(step)

    # --- sampling -----------------------------------------------------------------------------

    def sample_labels(self, n, device, generator=None):
        """Clusters drawn with the data's shares (inverse CDF of one uniform draw each)."""
        u = self.rand(n, device=device, generator=generator)
        cdf = self.shares.to(device).cumsum(0)
        return torch.searchsorted(cdf, u, right=True).clamp_(max=self.clusters - 1)

    def generate(self, z, y=None, G=None):
        if y is None:
            raise GanError("the self-conditioned GAN generates from clusters: pass "
                           "sample_labels(n)")
        return (G or self.G)(z, y)

    def judge(self, x, y=None):
        return self.D(x, y), {}

    # --- training -----------------------------------------------------------------------------

    def train_step(self, ctx, batches, step, stats):
        if self.recluster_due(step):
            self.recluster(step)
        if stats is not None:
            stats["clusters_used"] = float((self.shares > 0).sum())
        # the dataset's labels are dropped: real items are judged with their clusters
        relabelled = ((x, self.assign(x)) for x, _ in batches)
        return super().train_step(ctx, relabelled, step, stats)

    def logged_terms(self):
        return super().logged_terms() | {"clusters_used"}


@MODELS.register("selfcond", SelfCondConfig)
def build_selfcond(cfg: SelfCondConfig, info: DataInfo) -> SelfConditionedGAN:
    require_single_samples(cfg, "selfcond")
    how = resolve_conditioning(cfg.g_conditioning, resolve_arch(cfg.arch, info))
    net = build_backbone(cfg, info, extra_inputs=cfg.clusters if how is GConditioning.concat
                         else 0)
    G = ConditionalGenerator(net.G, cfg.clusters, how)
    D = ProjectionDiscriminator(net.D, cfg.clusters)
    nn.init.xavier_uniform_(D.embed.weight)
    finish_heads(D.embed, net, cfg)
    return SelfConditionedGAN(G, D, net.z_dim, info, cfg)

"""Semi-supervised GAN (Salimans et al. 2016, "Improved techniques for training GANs", sec. 5):
D is a (K+1)-class classifier, the K classes of the data plus "generated", trained on a few
labeled items and many unlabeled ones; G learns by feature matching.

D's class logits are l_k(x) = a_k(f) + s(f), where f is the backbone's features, a a new linear
head and s the backbone's own last layer; the "generated" logit is fixed at 0, so
P(real | x) = Z / (Z + 1), Z = sum_k exp l_k(x), and the real/fake logit passed to the loss is
log Z. With loss=gan the adversarial terms are exactly the paper's unsupervised loss (other
losses treat log Z as their score). D's loss adds the cross-entropy of l on labeled real items
(`d_supervised`); G minimises feature matching, the distance between the mean features f of
real and generated batches (`g_feature_matching`; the real means come from the discriminator
step just before, detached), with the loss's own G term weighted by model.g_adversarial (0: off).

`report` gives the accuracy of arg max_k l_k on the dataset's held-out items (dataset.holdout)
as `test_acc`; with model.baseline=true also `baseline_acc`, the same D network trained on the
labeled items alone (model.baseline_steps Adam steps, once per run, seeded, off the run's
random streams).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gancli.config import require_non_negative, require_positive
from gancli.data.base import DataInfo
from gancli.errors import GanError
from gancli.losses.auxiliary import class_loss, feature_matching
from gancli.models.backbone import (
    BackboneOptions,
    ClassifierDiscriminator,
    build_backbone,
    finish_heads,
    require_labels,
    require_single_samples,
)
from gancli.models.base import GAN
from gancli.registry import MODELS

BASELINE_SEED = 0

# The supervised baseline: the same network trained on the labeled items alone, which the
# semi-supervised one should beat.
Logits = Callable[[torch.Tensor], torch.Tensor]


def fit_classifier(net: nn.Module, logits: Logits, x: torch.Tensor, y: torch.Tensor,
                   steps: int, batch_size: int, lr: float, seed: int) -> None:
    """`steps` Adam updates (betas 0.5, 0.999, as the GAN's D) of cross-entropy on random
    batches of (x, y), drawn from a generator seeded with `seed`."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    batch_size = min(batch_size, len(x))
    net.train()
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=gen)[:batch_size].to(x.device)
        loss = F.cross_entropy(logits(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()


@torch.no_grad()
def accuracy(logits: Logits, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of (x, y) whose arg-max logit is y."""
    correct = 0
    for start in range(0, len(x), batch_size):
        pred = logits(x[start:start + batch_size]).argmax(dim=1)
        correct += int((pred == y[start:start + batch_size]).sum())
    return correct / max(len(x), 1)


@dataclass
class SGANConfig(BackboneOptions):
    name: str = "sgan"
    supervised_weight: float = 1.0  # weight of the cross-entropy on labeled real items
    feature_matching: float = 1.0  # weight of feature matching in G's loss
    g_adversarial: float = 0.0  # weight of the loss's own G term (0: feature matching alone)
    baseline: bool = False  # also train D's network on the labeled items alone; report both
    baseline_steps: int = 1000  # Adam steps of the baseline
    baseline_batch_size: int = 32  # batch size of the baseline
    baseline_lr: float = 2e-4  # Adam learning rate of the baseline

    def __post_init__(self):
        super().__post_init__()
        for key in ("supervised_weight", "feature_matching", "g_adversarial"):
            require_non_negative(f"model.{key}", getattr(self, key))
        for key in ("baseline_steps", "baseline_batch_size", "baseline_lr"):
            require_positive(f"model.{key}", getattr(self, key))


class KPlusOneDiscriminator(ClassifierDiscriminator):
    """(log Z, class logits l, features f) from one pass through the backbone's trunk."""

    def forward(self, x):
        features = self.backbone.features(x)
        logits = self.classes(features) + self.backbone.score(features).unsqueeze(1)
        return torch.logsumexp(logits, dim=1), logits, features

    def class_logits(self, x):
        return self(x)[1]


def build_networks(cfg: SGANConfig, info: DataInfo) -> tuple[nn.Module, nn.Module, int]:
    net = build_backbone(cfg, info)
    D = KPlusOneDiscriminator(net.D, info.num_classes)
    finish_heads(D.classes, net, cfg)
    return net.G, D, net.z_dim


class SGAN(GAN):
    def __init__(self, *args, cfg: SGANConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.cfg = cfg
        self.g_adversarial_weight = cfg.g_adversarial
        self.real_features: torch.Tensor | None = None  # mean f of the last real batch
        self._baseline_acc: float | None = None

    def judge(self, x, y=None):
        score, logits, features = self.D(x)
        return score, {"classes": logits, "features": features}

    def d_extra_loss(self, real, fake):
        self.real_features = self.head(real, "features").detach().mean(dim=0)
        return {"d_supervised": self.cfg.supervised_weight
                * class_loss(self.head(real, "classes"), real.y)}

    def g_extra_loss(self, fake):
        if not self.cfg.feature_matching:
            return {}
        if self.real_features is None:
            raise GanError("SGAN's feature matching needs a discriminator step first")
        return {"g_feature_matching": self.cfg.feature_matching
                * feature_matching(self.real_features, self.head(fake, "features"))}

    def report(self, data) -> dict[str, float]:
        if data.held_out is None:
            return {}
        device = next(self.D.parameters()).device
        x, y = (t.to(device) for t in data.held_out)
        was_training = self.D.training
        self.D.eval()
        values = {"test_acc": accuracy(self.D.class_logits, x, y)}
        self.D.train(was_training)
        if self.cfg.baseline:
            values["baseline_acc"] = self.baseline_accuracy(data, x, y)
        return values

    def baseline_accuracy(self, data, test_x, test_y) -> float:
        """Trained once per run, on the first call; it does not touch the run's RNG."""
        if self._baseline_acc is None:
            device = test_x.device
            labeled_x, labeled_y = (t.to(device) for t in data.labeled_items())
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(BASELINE_SEED)
                _, D, _ = build_networks(self.cfg, self.info)
                D = D.to(device)
                fit_classifier(D, D.class_logits, labeled_x, labeled_y, self.cfg.baseline_steps,
                               self.cfg.baseline_batch_size, self.cfg.baseline_lr, BASELINE_SEED)
            self._baseline_acc = accuracy(D.class_logits, test_x, test_y)
        return self._baseline_acc


@MODELS.register("sgan", SGANConfig)
def build_sgan(cfg: SGANConfig, info: DataInfo) -> SGAN:
    require_labels(info, "sgan")
    require_single_samples(cfg, "sgan")
    G, D, z_dim = build_networks(cfg, info)
    return SGAN(G, D, z_dim, info, cfg=cfg)

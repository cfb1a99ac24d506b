"""AC-GAN (Odena et al. 2017): a class-conditional G and a discriminator with an auxiliary
classifier head beside its real/fake score.

D's loss adds the classifier's cross-entropy on real items (`d_class_real`) and, as in the paper,
on generated ones with the labels G was given (`d_class_fake`, off with
model.fake_class_in_d=false); G's loss adds the cross-entropy of its samples under their labels
(`g_class`). Each is weighted by model.class_weight. The real/fake score goes to the configured
loss, so every loss works. Real items whose label dataset.labeled hid are left out of
d_class_real.
"""

from __future__ import annotations

from dataclasses import dataclass

from gancli.config import require_non_negative
from gancli.data.base import DataInfo
from gancli.losses.auxiliary import class_loss
from gancli.models.backbone import ClassifierDiscriminator, finish_heads
from gancli.models.conditioning import (
    ConditionalGAN,
    ConditionalOptions,
    build_conditional_backbone,
)
from gancli.registry import MODELS


@dataclass
class ACGANConfig(ConditionalOptions):
    name: str = "acgan"
    class_weight: float = 1.0  # weight of the classification terms in D's and G's losses
    fake_class_in_d: bool = True  # D also learns to classify generated samples (the paper's L_C)

    def __post_init__(self):
        super().__post_init__()
        require_non_negative("model.class_weight", self.class_weight)


class ACGAN(ConditionalGAN):
    def __init__(self, *args, class_weight: float, fake_class_in_d: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weight, self.fake_class_in_d = class_weight, fake_class_in_d

    def judge(self, x, y=None):
        score, logits = self.D(x)
        return score, {"classes": logits}

    def d_extra_loss(self, real, fake):
        terms = {"d_class_real": self.class_weight
                 * class_loss(self.head(real, "classes"), real.y)}
        if self.fake_class_in_d:
            terms["d_class_fake"] = self.class_weight * class_loss(self.head(fake, "classes"),
                                                                   fake.y)
        return terms

    def g_extra_loss(self, fake):
        return {"g_class": self.class_weight * class_loss(self.head(fake, "classes"), fake.y)}


@MODELS.register("acgan", ACGANConfig)
def build_acgan(cfg: ACGANConfig, info: DataInfo) -> ACGAN:
    net, G = build_conditional_backbone(cfg, info, "acgan")
    D = ClassifierDiscriminator(net.D, info.num_classes)
    finish_heads(D.classes, net, cfg)
    return ACGAN(G, D, net.z_dim, info, class_weight=cfg.class_weight,
                 fake_class_in_d=cfg.fake_class_in_d)

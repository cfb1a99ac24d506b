"""cgan, acgan, infogan and sgan: shapes, label and code plumbing, and each extra loss term
against a direct computation on fixed inputs. The networks have random weights: these tests
check wiring, not quality."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.losses.base import GanLoss
from gancli.models import build_model
from gancli.models.base import Judged
from gancli.models.conditioning import ConditionalBatchNorm
from gancli.training.step import StepOptions
from tests.helpers import adversarial_step, compose_config

MNIST = DataInfo("mnist5k", "image", (1, 28, 28), 10)
CIFAR = DataInfo("cifar10", "image", (3, 32, 32), 10)
RING = DataInfo("ring8", "points", (2,), 8)
UNLABELED = DataInfo("celeba", "image", (3, 64, 64), 0)
SMALL = ["model.width_g=8", "model.width_d=8"]


def _build(model: str, info: DataInfo = MNIST, extra: list[str] | None = None):
    torch.manual_seed(0)
    cfg = compose_config([f"model={model}", *SMALL, *(extra or [])])
    return build_model(cfg.model, info)


@pytest.mark.parametrize("arch", ["dcgan", "resnet", "mlp"])
def test_every_backbone_discriminator_splits_into_features_and_score(arch):
    cfg = compose_config([f"model={arch}", "model.width_d=8" if arch == "mlp"
                          else "model.width_d=8"])
    D = build_model(cfg.model, CIFAR).D.eval()
    x = torch.randn(3, 3, 32, 32)
    features = D.features(x)
    assert features.shape == (3, D.feature_dim)
    assert torch.allclose(D.score(features), D(x), atol=1e-6)


@pytest.mark.parametrize("model", ["cgan", "acgan", "sgan"])
def test_models_that_need_labels_refuse_an_unlabeled_dataset(model):
    with pytest.raises(ConfigError, match=f"model {model} needs class labels, but dataset "
                                          f"celeba has none"):
        _build(model, UNLABELED)


@pytest.mark.parametrize("model", ["cgan", "acgan", "infogan", "sgan"])
def test_label_and_code_models_cannot_pack(model):
    with pytest.raises(ConfigError, match="model.pack=2"):
        _build(model, extra=["model.pack=2"])


@pytest.mark.parametrize("model,info,arch", [
    ("cgan", MNIST, "dcgan"), ("cgan", CIFAR, "resnet"), ("cgan", RING, "mlp"),
    ("acgan", MNIST, "dcgan"), ("acgan", CIFAR, "resnet"), ("acgan", RING, "mlp"),
    ("infogan", MNIST, "dcgan"), ("infogan", CIFAR, "resnet"), ("infogan", RING, "mlp"),
    ("sgan", MNIST, "dcgan"), ("sgan", CIFAR, "resnet"), ("sgan", RING, "mlp"),
])
def test_shapes_on_every_backbone(model, info, arch):
    gan = _build(model, info, [f"model.arch={arch}"])
    z, y = gan.sample_latent(6, torch.device("cpu")), gan.sample_labels(6, torch.device("cpu"))
    x = gan.generate(z, y)
    assert x.shape == (6, *info.shape)
    assert gan.discriminate(x, y).shape == (6,)
    assert (y is not None) == (model in ("cgan", "acgan")) == gan.conditional
    if y is not None:
        assert y.dtype == torch.int64 and 0 <= y.min() and y.max() < info.num_classes


def test_auto_arch_is_mlp_for_points_and_auto_conditioning_cbn_for_resnet_only():
    gan = _build("cgan", RING)
    assert gan.G.how == "concat" and not gan.G.cbn
    assert _build("cgan", MNIST).G.how == "concat"
    resnet = _build("cgan", CIFAR, ["model.arch=resnet"]).G
    assert resnet.how == "cbn" and len(resnet.cbn) == 7  # 2 per block x 3 blocks + output


def test_cbn_on_a_backbone_without_batchnorm_fails_clearly():
    with pytest.raises(ConfigError, match="g_conditioning=cbn needs BatchNorm"):
        _build("cgan", RING, ["model.g_conditioning=cbn"])


def test_conditional_batchnorm_scales_and_shifts_per_class():
    cbn = ConditionalBatchNorm(torch.nn.BatchNorm2d(2), num_classes=3)
    with torch.no_grad():
        cbn.gain.weight.copy_(torch.tensor([[1.0, 1.0], [2.0, 3.0], [0.0, 0.0]]))
        cbn.bias.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, -1.0], [5.0, 5.0]]))
    x = torch.randn(4, 2, 3, 3)
    normed = F.batch_norm(x, None, None, training=True, eps=cbn.norm.eps)
    cbn.condition = torch.tensor([0, 1, 2, 1])
    out = cbn(x)
    assert torch.allclose(out[0], normed[0], atol=1e-5)
    assert torch.allclose(out[1, 0], 2 * normed[1, 0] + 1, atol=1e-5)
    assert torch.allclose(out[1, 1], 3 * normed[1, 1] - 1, atol=1e-5)
    assert torch.equal(out[2], torch.full((2, 3, 3), 5.0))


@pytest.mark.parametrize("extra", [["model.g_conditioning=cbn"], []])
def test_conditional_generator_depends_on_the_label(extra):
    gan = _build("cgan", MNIST, extra).eval()
    for layer in gan.G.cbn:  # class-conditional norms start as plain ones (gain 1, bias 0)
        torch.nn.init.normal_(layer.gain.weight, 1.0, 0.5)
    z = torch.randn(1, gan.z_dim).repeat(10, 1)
    images = gan.generate(z, torch.arange(10))
    assert not torch.allclose(images[0], images[1])
    with pytest.raises(Exception, match="labels"):
        gan.generate(z)


def test_projection_adds_the_label_embedding_dotted_with_the_features():
    gan = _build("cgan").eval()
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 3, 9, -1])
    features = gan.D.backbone.features(x)
    plain = gan.D.backbone.score(features)
    expected = plain + (gan.D.embed.weight[y.clamp(min=0)] * features).sum(dim=1)
    expected[3] = plain[3]  # the unlabeled item (-1) is judged unconditionally
    assert torch.allclose(gan.discriminate(x, y), expected, atol=1e-5)
    assert torch.allclose(gan.discriminate(x, None), plain, atol=1e-6)


def _judged(gan, n=6, real_y=None):
    """A real batch and a generated one, scored by D, as the training step makes them."""
    device = torch.device("cpu")
    real = torch.rand(n, 1, 28, 28) * 2 - 1
    y = torch.arange(n) % 10 if real_y is None else real_y
    y_fake, z = gan.sample_labels(n, device), gan.sample_latent(n, device)
    fake = gan.generate(z, y_fake)
    return gan.judged(real, y), gan.judged(fake, y_fake, z)


def test_acgan_terms_are_weighted_cross_entropies_of_the_class_head():
    gan = _build("acgan", extra=["model.class_weight=0.5"]).eval()
    real, fake = _judged(gan, real_y=torch.tensor([0, 1, 2, -1, 4, 5]))
    real_logits = gan.D.classes(gan.D.backbone.features(real.x))
    fake_logits = gan.D.classes(gan.D.backbone.features(fake.x))
    keep = real.y >= 0
    d_terms = gan.d_extra_loss(real, fake)
    assert set(d_terms) == {"d_class_real", "d_class_fake"}
    assert d_terms["d_class_real"].item() == pytest.approx(
        0.5 * F.cross_entropy(real_logits[keep], real.y[keep]).item(), rel=1e-5)
    assert d_terms["d_class_fake"].item() == pytest.approx(
        0.5 * F.cross_entropy(fake_logits, fake.y).item(), rel=1e-5)
    g_terms = gan.g_extra_loss(fake)
    assert list(g_terms) == ["g_class"]
    assert g_terms["g_class"].item() == pytest.approx(d_terms["d_class_fake"].item(), rel=1e-6)
    gan.fake_class_in_d = False
    assert set(gan.d_extra_loss(real, fake)) == {"d_class_real"}


def test_heads_are_recomputed_when_a_score_carries_none():
    gan = _build("acgan").eval()
    real, fake = _judged(gan)
    plain = Judged(fake.x, fake.y, fake.score.detach().clone(), fake.z)  # judged without heads
    assert torch.allclose(gan.g_extra_loss(plain)["g_class"], gan.g_extra_loss(fake)["g_class"])


def test_infogan_latent_layout_and_codes():
    gan = _build("infogan", extra=["model.categorical=[10,3]", "model.continuous=2"])
    assert gan.code_names() == ["c1", "c2", "c3", "c4"]
    z = gan.sample_latent(500, torch.device("cpu"))
    assert z.shape == (500, gan.z_dim + 10 + 3 + 2)
    onehots = z[:, gan.z_dim:gan.z_dim + 13]
    assert torch.equal(onehots[:, :10].sum(dim=1), torch.ones(500))
    assert torch.equal(onehots[:, 10:].sum(dim=1), torch.ones(500))
    cats, cont = gan.codes(z)
    assert torch.equal(cats[0], onehots[:, :10].argmax(dim=1)) and cats[1].max() == 2
    assert cont.shape == (500, 2) and cont.min() >= -1 and cont.max() <= 1
    assert set(cats[0].tolist()) == set(range(10))  # every value of c1 is drawn


def test_infogan_terms_read_the_codes_from_the_q_head():
    gan = _build("infogan", extra=["model.categorical=[10,3]", "model.continuous=2",
                                   "model.info_weight=2", "model.continuous_weight=0.5"]).eval()
    real, fake = _judged(gan)
    q = gan.D.q(gan.D.backbone.features(fake.x))
    cats, cont = gan.codes(fake.z)
    cat = F.cross_entropy(q[:, :10], cats[0]) + F.cross_entropy(q[:, 10:13], cats[1])
    gauss = 0.5 * (cont - q[:, 13:]).pow(2).sum(dim=1).mean()
    for prefix, terms in (("d", gan.d_extra_loss(real, fake)), ("g", gan.g_extra_loss(fake))):
        assert terms[f"{prefix}_info_cat"].item() == pytest.approx(2 * cat.item(), rel=1e-5)
        assert terms[f"{prefix}_info_cont"].item() == pytest.approx(0.5 * gauss.item(),
                                                                    rel=1e-5)


def test_infogan_without_continuous_codes_has_no_continuous_term():
    gan = _build("infogan", extra=["model.continuous=0"]).eval()
    real, fake = _judged(gan)
    assert set(gan.g_extra_loss(fake)) == {"g_info_cat"}


def test_infogan_needs_a_code():
    with pytest.raises(ConfigError, match="at least one code"):
        _build("infogan", extra=["model.categorical=[]", "model.continuous=0"])


def test_infogan_traversal_varies_one_code_and_holds_the_rest():
    gan = _build("infogan", extra=["model.categorical=[10]", "model.continuous=2"])
    cat = gan.traversal("c1", rows=3, steps=7, device=torch.device("cpu"))
    assert cat.shape == (3 * 10, gan.z_dim + 12)  # a categorical code shows all its values
    rows = cat.view(3, 10, -1)
    assert torch.equal(gan.codes(cat)[0][0].view(3, 10), torch.arange(10).repeat(3, 1))
    held = torch.cat([rows[:, :, :gan.z_dim], rows[:, :, gan.z_dim + 10:]], dim=2)
    assert torch.equal(held, held[:, :1].expand_as(held))  # noise and c2, c3 fixed in a row
    assert not torch.equal(held[0, 0], held[1, 0])  # rows differ
    cont = gan.traversal("c3", rows=2, steps=5, device=torch.device("cpu")).view(2, 5, -1)
    assert torch.allclose(cont[0, :, gan.z_dim + 11], torch.linspace(-2, 2, 5))
    assert torch.equal(cont[:, :, :gan.z_dim + 11], cont[:, :1, :gan.z_dim + 11].expand(
        2, 5, gan.z_dim + 11))
    with pytest.raises(ConfigError, match="codes are c1, c2, c3"):
        gan.traversal("c9", 2, 5, torch.device("cpu"))


def test_traversal_needs_codes():
    with pytest.raises(ConfigError, match="traverse= needs a model with latent codes"):
        _build("cgan").traversal("c1", 2, 5, torch.device("cpu"))


def test_sgan_score_is_the_real_probability_of_a_k_plus_one_softmax():
    gan = _build("sgan").eval()
    x = torch.randn(5, 1, 28, 28)
    score, heads = gan.judge(x)
    logits = heads["classes"]
    # softmax over [l_1..l_K, 0]: P(real) = 1 - P(class K+1), and loss=gan sees sigmoid(score)
    k_plus_one = torch.softmax(torch.cat([logits, torch.zeros(5, 1)], dim=1), dim=1)
    assert torch.allclose(torch.sigmoid(score), 1 - k_plus_one[:, -1], atol=1e-6)
    assert torch.allclose(torch.softmax(logits, dim=1),
                          k_plus_one[:, :-1] / k_plus_one[:, :-1].sum(1, keepdim=True),
                          atol=1e-6)


def test_sgan_terms_supervised_cross_entropy_and_feature_matching():
    gan = _build("sgan", extra=["model.supervised_weight=2", "model.feature_matching=3"]).eval()
    real, fake = _judged(gan, real_y=torch.tensor([1, -1, -1, 3, -1, -1]))
    _, logits, real_f = gan.D(real.x)
    d_terms = gan.d_extra_loss(real, fake)
    keep = real.y >= 0
    assert d_terms["d_supervised"].item() == pytest.approx(
        2 * F.cross_entropy(logits[keep], real.y[keep]).item(), rel=1e-5)
    fake_f = gan.D(fake.x)[2]
    g_terms = gan.g_extra_loss(fake)
    assert g_terms["g_feature_matching"].item() == pytest.approx(
        3 * (real_f.mean(0) - fake_f.mean(0)).pow(2).mean().item(), rel=1e-5)
    assert gan.g_adversarial_weight == 0.0


class _ConstantLoss(GanLoss):
    """A stand-in loss (d_loss 0, g_loss = mean score, no regulariser) so only the model's
    terms remain."""

    def d_loss(self, real, fake):
        return real.sum() * 0

    def g_loss(self, fake):
        return fake.mean()


def test_the_step_adds_and_logs_the_extra_terms_and_weighs_the_adversarial_one():
    gan = _build("sgan")
    real, y = torch.rand(8, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, -1, -1, 2, -1, -1, 3])
    opt_d = torch.optim.SGD(gan.D.parameters(), lr=0.0)
    opt_g = torch.optim.SGD(gan.G.parameters(), lr=0.0)
    step = adversarial_step(gan, _ConstantLoss(), opt_g, opt_d, StepOptions(batch_size=8))
    stats = {}
    step(itertools.repeat((real, y)), 1, stats)
    assert stats["d_supervised"] > 0 and stats["d_loss"] == 0
    assert stats["g_feature_matching"] > 0 and "g_loss" in stats
    # with g_adversarial 0, G's gradient is feature matching's alone
    assert any(torch.count_nonzero(p.grad) for p in gan.G.parameters())
    gan.cfg.feature_matching = 0.0  # now no term at all: every G gradient is zero
    step(itertools.repeat((real, y)), 2)
    assert all(torch.count_nonzero(p.grad) == 0 for p in gan.G.parameters())


def test_the_step_is_unchanged_for_models_without_extra_terms():
    gan = _build("dcgan")
    assert gan.d_extra_loss(None, None) == {} and gan.g_extra_loss(None) == {}
    assert gan.g_adversarial_weight == 1.0 and not gan.conditional and gan.code_names() == []
    assert math.isclose(gan.report(None) == {} and 1.0, 1.0)

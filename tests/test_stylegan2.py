"""StyleGAN2 (model=stylegan2): modulated convolution against its definition, demodulation,
the path-length quantity against an explicit Jacobian, style mixing, and an exact resume with
ADA on. Tiny networks with random weights: only the wiring and the formulas are under test."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models.stylegan2 import (
    PRESETS,
    ModulatedConv,
    StyleGAN2Config,
    build_stylegan2,
    path_lengths,
)
from gancli.sampling import SampleArgs, load_gan, run_sample
from gancli.training.loop import train
from tests.helpers import compose_config, straight_and_resumed

INFO = DataInfo(name="mnist5k", kind="image", shape=(1, 16, 16), num_classes=10)
TINY = dict(z_dim=8, w_dim=8, mapping_layers=2, width_g=8, width_d=8)


def test_modulated_conv_is_a_per_sample_convolution_with_styled_demodulated_weights():
    torch.manual_seed(0)
    conv = ModulatedConv(3, 5, 3, w_dim=4)
    x, w = torch.randn(2, 3, 6, 6), torch.randn(2, 4)
    out = conv(x, w)
    for i in range(2):
        style = conv.affine(w[i:i + 1])[0]  # one scale per input channel
        weight = conv.weight * conv.gain * style[None, :, None, None]
        weight = weight / weight.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        torch.testing.assert_close(out[i:i + 1], F.conv2d(x[i:i + 1], weight, padding=1))


def test_demodulation_gives_unit_output_variance_for_unit_inputs():
    torch.manual_seed(0)
    conv = ModulatedConv(64, 32, 3, w_dim=8)
    out = conv(torch.randn(16, 64, 16, 16), torch.randn(16, 8) * 3)
    inner = out[..., 1:-1, 1:-1]  # away from the zero padding
    assert inner.var().item() == pytest.approx(1.0, rel=0.1)


def test_path_lengths_equal_the_explicit_jacobian_norm():
    torch.manual_seed(0)
    info = DataInfo(name="mnist5k", kind="image", shape=(1, 8, 8), num_classes=10)
    G = build_stylegan2(StyleGAN2Config(**TINY, style_mixing=0.0), info).G
    ws = G.styles(torch.randn(2, 8)).detach().clone().requires_grad_(True)
    draw = torch.randn(2, 1, 8, 8)
    lengths = path_lengths(G.synthesis(ws, "const"), ws, draw)
    y = draw / 8  # what path_lengths projects on: the draw / sqrt(pixels)
    for i in range(2):
        def image(w, i=i):
            return G.synthesis(w[None], "const")[0]
        # (1, 8, 8, L, w_dim)
        jac = torch.autograd.functional.jacobian(image, ws[i].detach(), vectorize=True)
        jty = (jac * y[i][..., None, None]).sum(dim=(0, 1, 2))  # (L, w_dim)
        expected = jty.square().sum(dim=1).mean().sqrt()
        assert lengths[i].item() == pytest.approx(expected.item(), rel=1e-4)


def test_style_mixing_switches_to_the_second_w_at_the_cut():
    torch.manual_seed(0)
    model = build_stylegan2(StyleGAN2Config(**TINY), INFO)
    G = model.G.eval()
    z, other = torch.randn(3, 8), torch.randn(3, 8)
    cut = torch.tensor([1, 3, G.synthesis.num_ws])  # the last one: never switches
    _, ws = G(z, other, cut, return_ws=True)
    w1, w2 = G.styles(z), G.styles(other)
    for i, c in enumerate(cut.tolist()):
        torch.testing.assert_close(ws[i, :c], w1[i, :c])
        torch.testing.assert_close(ws[i, c:], w2[i, c:])


def test_presets_set_the_reference_values_and_explicit_keys_win():
    cifar = compose_config(["model=stylegan2", "model.preset=cifar"])
    assert (cifar.model.mapping_layers, cifar.model.width_g, cifar.model.style_mixing,
            cifar.model.d_arch.value, cifar.model.mbstd_group, cifar.loss.pl_weight) == (
        2, 512, 0.0, "orig", 32, 0.0)  # no path-length regulariser, no mixing
    small = compose_config(["model=stylegan2", "model.preset=small"])
    assert (small.model.z_dim, small.model.width_d, small.loss.pl_weight) == (64, 64, 2.0)
    mine = compose_config(["model=stylegan2", "model.preset=cifar", "model.mapping_layers=4",
                           "loss.pl_weight=1", "loss=hinge"])
    assert (mine.model.mapping_layers, mine.model.width_g, mine.loss.pl_weight) == (4, 512, 1.0)
    assert compose_config(["+experiment=stylegan2_cifar10"]).model.width_g == 512
    assert compose_config(["model=dcgan"]).loss.pl_weight == 0.0  # no presets, no styles
    # the schema's own defaults (StyleGAN2Config()) are the base preset's
    base, default = compose_config(["model=stylegan2"]), StyleGAN2Config()
    for key, value in PRESETS["base"].items():
        expected = base.loss.pl_weight if key == "pl_weight" else getattr(default, key)
        actual = getattr(base.loss if key == "pl_weight" else base.model, key)
        assert getattr(actual, "value", actual) == getattr(expected, "value", expected) == value
    with pytest.raises(ConfigError, match="^model.preset must be one of base, cifar, small, "
                                          "got huge$"):
        compose_config(["model=stylegan2", "model.preset=huge"])


def test_truncation_cutoff_leaves_the_layers_past_it_untouched():
    torch.manual_seed(0)
    model = build_stylegan2(StyleGAN2Config(**TINY), INFO)
    G = model.G.eval()
    G.w_avg.normal_()  # a centre away from 0, so truncation moves every entry
    z, cutoff = torch.randn(3, 8), 2
    full, cut = G.styles(z), G.styles(z, 0.5, cutoff)
    torch.testing.assert_close(cut[:, :cutoff], torch.lerp(G.w_avg, full[:, :cutoff], 0.5))
    assert torch.equal(cut[:, cutoff:], full[:, cutoff:])
    assert not torch.equal(cut[:, :cutoff], full[:, :cutoff])
    # through the sampling context, as gan sample truncation=0.5 truncation_cutoff=2 sets it
    with model.truncation(0.5, cutoff), model.noise_inputs("const"):
        _, ws = G(z, return_ws=True)
    assert torch.equal(ws, cut)


SG2 = ["+experiment=stylegan2_mnist5k", "dataset.resolution=16", "model.width_g=8",
       "model.width_d=8", "model.z_dim=8", "model.w_dim=8", "train.batch_size=8",
       "train.log_every=1", "train.sample_every=100", "train.ckpt_every=3", "device=cpu",
       "device.threads=1", "train.num_samples=4", "loss.pl_every=2", "loss.reg_every=2",
       "train.augment=[flip,translation]", "train.augment_p=ada", "train.ada_kimg=0.1",
       "train.ada_interval=2"]


def test_resume_is_bit_identical_with_ada_w_average_and_path_length_mean(tmp_path):
    a, b = straight_and_resumed(SG2, tmp_path, steps=6, stop=3)
    assert a["model"]["pl_mean"] != 0 and a["model"]["G.w_avg"].abs().sum() > 0
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["update"]["adaptive_augment"] == b["update"]["adaptive_augment"]


def test_bad_values_fail_clearly():
    with pytest.raises(ConfigError, match="power-of-two resolution >= 8, got 28"):
        build_stylegan2(StyleGAN2Config(**TINY), DataInfo("mnist5k", "image", (1, 28, 28), 10))
    with pytest.raises(ConfigError, match="model.style_mixing must be in"):
        compose_config(["model=stylegan2", "model.style_mixing=2"])
    with pytest.raises(ConfigError, match="loss.pl_every must be"):
        compose_config(["loss.pl_every=0"])


def test_path_length_weight_on_a_model_without_styles_fails_clearly(tmp_path):
    cfg = compose_config(["dataset=ring8", "model=mlp", "loss.pl_weight=2", "train.steps=1",
                          "device=cpu"])
    with pytest.raises(ConfigError, match="loss.pl_weight is StyleGAN2's path-length"):
        train(cfg, tmp_path)


def _sampled_run(tmp_path):
    train(compose_config([*SG2, "train.steps=2", "train.augment=[]", "train.augment_p=1"]),
          tmp_path)
    return tmp_path


def test_sampling_truncation_noise_and_the_mixing_grid(tmp_path):
    run = _sampled_run(tmp_path / "run")

    def sample(*args, seed=0):
        out = run_sample(SampleArgs(ckpt=str(run), out=str(tmp_path / "s.npz"), n=4, seed=seed,
                                    **dict(a.split("=") for a in args)))
        return torch.from_numpy(np.load(out)["samples"])

    const = sample("noise=const")
    assert torch.equal(const, sample("noise=const"))  # the same z, the same fixed noise
    random = sample("noise=random")
    assert torch.equal(random, sample("noise=random"))  # its noise is drawn from `seed` too
    assert not torch.equal(random, const)
    assert not torch.equal(random, sample("noise=random", seed=1))
    flat = run_sample(SampleArgs(ckpt=str(run), out=str(tmp_path / "t.npz"), n=4,
                                 truncation=1e-6, noise="none"))
    flat = torch.from_numpy(np.load(flat)["samples"])
    torch.testing.assert_close(flat, flat[:1].expand_as(flat))  # psi -> 0: every w is w_avg
    model, _ = load_gan(run, torch.device("cpu"))
    with model.noise_inputs("const"):
        grid = model.mixing_grid(3, torch.device("cpu"), seed=0)
        G = model.G
        gen = torch.Generator().manual_seed(0)
        rows = G.styles(model.sample_latent(3, torch.device("cpu"), generator=gen))
        cols = G.styles(model.sample_latent(3, torch.device("cpu"), generator=gen))
        half = G.synthesis.num_ws // 2
        ws = torch.cat([rows[1:2, :half], cols[2:3, half:]], dim=1)  # row 1, column 2
        torch.testing.assert_close(grid[(1 + 1) * 4 + 1 + 2], G.synthesis(ws, "const")[0])
    assert grid.shape[0] == 16 and torch.equal(grid[0], torch.full_like(grid[0], -1.0))


def test_samples_with_random_noise_inputs_depend_on_the_seed_alone():
    # gan sample / gan eval: the noise inputs come from torch's global generator, which
    # generate_batches seeds from `seed`: the same seed twice gives the same images whatever
    # was drawn before (random weights: only the seeding is under test)
    from gancli.sampling import generate_batches

    torch.manual_seed(0)
    model = build_stylegan2(StyleGAN2Config(**TINY), INFO).eval()
    for name, param in model.named_parameters():
        if name.endswith("noise_strength"):  # 0 at init: the noise would not show
            param.data.fill_(0.5)
    cpu = torch.device("cpu")

    def images(seed):
        return torch.cat([x for x, _ in generate_batches(model, 6, cpu, seed, batch_size=4)])

    first = images(3)
    torch.rand(100)  # other draws in between
    assert torch.equal(images(3), first)
    assert not torch.equal(images(4), first)


def test_stylegan2_sampling_options_on_other_models_fail_clearly(tmp_path):
    train(compose_config(["dataset=ring8", "model=mlp", "train.steps=1", "device=cpu"]),
          tmp_path)
    for key, value, needle in [("noise", "const", "noise=const sets the noise inputs"),
                               ("mix", 3, "mix= draws a style-mixing grid"),
                               ("truncation_cutoff", 2, "truncation_cutoff= truncates")]:
        with pytest.raises(ConfigError, match=needle):
            run_sample(SampleArgs(ckpt=str(tmp_path), out=str(tmp_path / "x.png"),
                                  **{key: value}))
    with pytest.raises(ConfigError, match="noise must be one of random, const, none"):
        SampleArgs(ckpt="x", noise="loud")

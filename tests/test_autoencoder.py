"""The autoencoder and VAE families: their loss terms on fixed inputs, their prior, and that
each trains, resumes bit-identically, samples and evaluates through the same core as the GANs.
Networks have random weights where only the wiring is under test."""

import math

import numpy as np
import pytest
import torch

from gancli.cli import main
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models import build_model
from gancli.models.autoencoder import gaussian_kl, reconstruction_loss
from gancli.sampling import SampleArgs, load_gan, run_sample
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from tests.helpers import compose_config

FAST = ["device=cpu", "device.threads=1", "train.batch_size=16", "train.log_every=2",
        "train.sample_every=4", "train.ckpt_every=4", "train.num_samples=16"]
SMALL = {"mnist5k": ["dataset=mnist5k", "model.width_g=8"],
         "ring8": ["dataset=ring8", "dataset.size=512", "model.width_g=16"],
         "digits": ["dataset=digits", "model.width_g=8"]}
IMAGES = DataInfo("test", "image", (1, 28, 28))


def test_kl_is_the_closed_form_of_two_gaussians():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    # KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - ln s^2) / 2 per dimension
    expected = [0.5 * (1 + 1 - 1 - 0) + 0.5 * (0 + 4 - 1 - math.log(4)), 0.0]
    assert gaussian_kl(mu, logvar).tolist() == pytest.approx(expected, rel=1e-6)
    normal = torch.distributions.Normal
    reference = torch.distributions.kl_divergence(
        normal(mu, (0.5 * logvar).exp()), normal(torch.zeros(2), torch.ones(2))).sum(1)
    assert torch.allclose(gaussian_kl(mu, logvar), reference)


def test_reconstruction_terms_on_fixed_inputs():
    x = torch.tensor([[[[1.0, -1.0], [0.0, 0.5]]]])  # one 1x2x2 image in [-1, 1]
    x_hat = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]]])
    assert reconstruction_loss(x_hat, x, "mse").item() == pytest.approx(1 + 1 + 0 + 0.25)
    assert reconstruction_loss(x_hat, x, "l1").item() == pytest.approx(1 + 1 + 0 + 0.5)
    # x_hat 0 is the Bernoulli mean 1/2: every value costs ln 2 whatever its target
    assert reconstruction_loss(x_hat, x, "bce").item() == pytest.approx(4 * math.log(2))
    assert reconstruction_loss(x, x, "bce").item() < reconstruction_loss(x_hat, x, "bce").item()


def test_vae_loss_is_recon_plus_warmed_up_beta_kl():
    cfg = compose_config(["model=vae", "model.width_g=8", "model.beta=2", "model.kl_warmup=10"])
    vae = build_model(cfg.model, IMAGES)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    torch.manual_seed(1)
    terms = vae.terms(x, step=5)
    torch.manual_seed(1)
    mu, logvar = vae.posterior(x)
    z = mu + (0.5 * logvar).exp() * torch.randn(4, vae.z_dim)
    recon = reconstruction_loss(vae.decoder(z), x, "bce").mean()
    kl = gaussian_kl(mu, logvar).mean()
    assert terms["recon"].item() == pytest.approx(recon.item(), rel=1e-5)
    assert terms["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx((recon + 2 * 0.5 * kl).item(), rel=1e-5)
    assert terms["elbo"].item() == pytest.approx(-(recon + kl).item(), rel=1e-5)
    assert vae.kl_weight(20) == 2.0


def test_ae_prior_is_fitted_to_the_codes():
    cfg = compose_config(["model=ae", "model.z_dim=2", "model.width_g=8"])
    ae = build_model(cfg.model, IMAGES)
    gen = torch.Generator().manual_seed(0)
    codes = torch.randn(4000, 2, generator=gen) @ torch.tensor([[2.0, 0.0], [1.0, 0.5]]) + 3
    ae.fit_prior(codes)
    drawn = ae.codes(ae.sample_latent(20000, torch.device("cpu"), generator=gen))
    assert torch.allclose(drawn.mean(0), codes.mean(0), atol=0.1)
    assert torch.allclose(torch.cov(drawn.T), torch.cov(codes.T), atol=0.15)


def test_ae_mixture_prior_draws_from_each_cluster():
    cfg = compose_config(["model=ae", "model.z_dim=2", "model.width_g=8", "model.prior=gmm",
                          "model.prior_components=2"])
    ae = build_model(cfg.model, IMAGES)
    gen = torch.Generator().manual_seed(0)
    codes = torch.cat([torch.randn(1000, 2, generator=gen) * 0.1 - 5,
                       torch.randn(3000, 2, generator=gen) * 0.1 + 5])
    ae.fit_prior(codes)
    drawn = ae.codes(ae.sample_latent(4000, torch.device("cpu"), generator=gen))
    right = (drawn[:, 0] > 0).float().mean().item()
    assert right == pytest.approx(0.75, abs=0.03)  # the mixture's weights
    assert (drawn[:, 0].abs() > 4).all()  # no draw between the clusters


def test_bce_on_points_is_one_line():
    with pytest.raises(ConfigError, match="model.recon=bce needs images"):
        cfg = compose_config(["model=vae", "model.recon=bce", "dataset=ring8"])
        build_model(cfg.model, DataInfo("ring8", "points", (2,)))


@pytest.mark.parametrize("model", ["ae", "vae"])
@pytest.mark.parametrize("dataset", sorted(SMALL))
def test_trains_samples_and_resumes_bit_identically(tmp_path, model, dataset):
    base = [*FAST, f"model={model}", *SMALL[dataset]]
    full = compose_config([*base, "train.steps=8"])
    train(full, tmp_path / "full")
    train(compose_config([*base, "train.steps=4"]), tmp_path / "resumed")
    train(compose_config([*base, "train.steps=8", f"resume={tmp_path / 'resumed'}"]),
          tmp_path / "resumed")
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 8
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert torch.equal(a["noise_rng"], b["noise_rng"])
    records = [line for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert "recon" in records[-1] and ("kl" in records[-1]) == (model == "vae")
    out = run_sample(SampleArgs(ckpt=str(tmp_path / "full"), out=str(tmp_path / "s.npz"), n=5))
    samples = np.load(out)["samples"]
    assert samples.shape[0] == 5 and np.isfinite(samples).all()
    if dataset != "ring8":  # images: a reconstruction grid with every export
        assert (tmp_path / "full" / "samples" / "reconstructions_step_0000008.png").is_file()


def test_ae_prior_is_checkpointed_and_used_by_sample(tmp_path):
    train(compose_config([*FAST, "model=ae", *SMALL["mnist5k"], "train.steps=4"]), tmp_path)
    state = load_checkpoint(tmp_path)
    assert not torch.equal(state["model"]["prior_means"], torch.zeros_like(
        state["model"]["prior_means"]))  # refitted at the export before the checkpoint
    ae, _ = load_gan(tmp_path, torch.device("cpu"))
    assert torch.equal(ae.prior_means, state["model"]["prior_means"])
    grid = run_sample(SampleArgs(ckpt=str(tmp_path), out=str(tmp_path / "i.png"),
                                 interpolate=5, rows=2))
    assert grid.is_file()


def test_eval_runs_unchanged_on_a_vae(tmp_path, capsys):
    train(compose_config([*FAST, "model=vae", *SMALL["mnist5k"], "train.steps=4"]), tmp_path)
    main(["eval", f"ckpt={tmp_path}", "extractor=mnist", "n=200", "--fid",
          f"out={tmp_path / 'eval.json'}"])
    assert "fid" in (tmp_path / "eval.json").read_text()


def test_gan_list_shows_the_new_families(capsys):
    main(["list"])
    out = capsys.readouterr().out
    assert "ae" in out and "vae" in out

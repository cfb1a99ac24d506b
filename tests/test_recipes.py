"""`+experiment=<name>` recipes compose to the published settings they name."""

import pytest

from gancli.cli import group_options
from tests.helpers import compose_config, run_gan


def test_every_recipe_composes_and_validates():
    names = group_options("experiment")
    assert {"dcgan_mnist", "wgan_gp_cifar10", "sngan_cifar10", "ring8", "grid25"} <= set(names)
    for name in names:
        compose_config([f"+experiment={name}"])


def test_sngan_cifar10_has_mimicrys_settings():
    cfg = compose_config(["+experiment=sngan_cifar10"])
    assert (cfg.dataset.name, cfg.model.name, cfg.loss.name) == ("cifar10", "resnet", "hinge")
    assert cfg.model.spectral_norm_d and (cfg.model.width_g, cfg.model.width_d) == (256, 128)
    o = cfg.optimizer
    assert (o.name, o.lr, o.betas, o.schedule.value) == ("adam", 2e-4, [0.0, 0.9], "linear")
    t = cfg.train
    assert (t.batch_size, t.n_critic, t.steps) == (64, 5, 100_000)


def test_wgan_gp_cifar10_has_the_papers_settings():
    cfg = compose_config(["+experiment=wgan_gp_cifar10"])
    assert (cfg.loss.name, cfg.loss.gp, cfg.train.n_critic) == ("wgan-gp", 10.0, 5)
    assert (cfg.model.name, cfg.model.width_g, cfg.model.spectral_norm_d) == ("resnet", 128, False)
    assert (cfg.optimizer.betas, cfg.optimizer.schedule.value) == ([0.0, 0.9], "linear")


def test_dcgan_mnist_has_the_papers_settings():
    cfg = compose_config(["+experiment=dcgan_mnist"])
    assert (cfg.dataset.name, cfg.model.name, cfg.model.init.value) == ("mnist", "dcgan", "dcgan")
    assert (cfg.optimizer.lr, cfg.optimizer.betas, cfg.train.batch_size) == (
        2e-4, [0.5, 0.999], 128)


def test_recipes_can_be_overridden_on_the_command_line():
    cfg = compose_config(["+experiment=sngan_cifar10", "train.steps=10", "loss=gan"])
    assert (cfg.train.steps, cfg.loss.name, cfg.train.n_critic) == (10, "gan", 5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_toy_recipes_run_end_to_end(tmp_path, name):
    result = run_gan("train", f"+experiment={name}", "train.steps=20", "train.log_every=10",
                     "train.sample_every=20", "train.ckpt_every=20", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 1 and (runs[0] / "checkpoints" / "last.pt").is_file()
    sampled = run_gan("sample", f"ckpt={runs[0]}", "out=points.npz", "n=50", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr


def test_stacked_mnist_selfcond_is_the_stacked_recipe_conditioned_on_clusters():
    ours = compose_config(["+experiment=stacked_mnist"])
    cfg = compose_config(["+experiment=stacked_mnist_selfcond"])
    assert (cfg.dataset.name, cfg.model.name, cfg.model.clusters) == ("stacked_mnist",
                                                                      "selfcond", 100)
    assert (cfg.model.width_g, cfg.model.width_d, cfg.model.z_dim) == (
        ours.model.width_g, ours.model.width_d, ours.model.z_dim)
    assert (cfg.loss, cfg.optimizer, cfg.train) == (ours.loss, ours.optimizer, ours.train)

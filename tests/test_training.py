"""Training on tiny settings: weights move, the run directory has its documented layout."""

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gancli.data import build_dataset
from gancli.losses import build_loss
from gancli.models import build_model
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from gancli.training.optimizers import build_optimizer
from gancli.training.step import StepOptions
from tests.helpers import TINY, adversarial_step, compose_config, run_gan


def _one_iteration_setup(**options):
    cfg = compose_config(TINY)
    data = build_dataset(cfg.dataset)
    gan = build_model(cfg.model, data.info)
    loss = build_loss(cfg.loss)
    opt_g = build_optimizer(cfg.optimizer, gan.G.parameters(), "g")
    opt_d = build_optimizer(cfg.optimizer, gan.D.parameters(), "d")
    step = adversarial_step(gan, loss, opt_g, opt_d, StepOptions(batch_size=16, **options))
    return gan, step, data.batches(data.sampler(16, 0), torch.device("cpu"))


def test_one_step_changes_both_networks():
    gan, step, batches = _one_iteration_setup()
    g0 = [p.detach().clone() for p in gan.G.parameters()]
    d0 = [p.detach().clone() for p in gan.D.parameters()]
    stats = {}
    step(batches, 1, stats)
    assert all(not torch.equal(a, b) for a, b in zip(g0, gan.G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, gan.D.parameters(), strict=True))
    assert {"d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"} <= set(stats)


def test_generator_update_computes_no_discriminator_weight_gradients():
    gan, step, batches = _one_iteration_setup(freeze_d=True)
    grads = []
    hook = gan.D.net[0].weight.register_hook(lambda g: grads.append(g))
    step(batches, 1)
    hook.remove()
    assert len(grads) == 1  # D's own update only
    assert all(p.requires_grad for p in gan.D.parameters())  # unfrozen afterwards


@pytest.mark.parametrize("reuse,passes", [(True, 1), (False, 2)])
def test_reuse_fake_runs_the_generator_once_per_iteration(reuse, passes):
    gan, step, batches = _one_iteration_setup(reuse_fake=reuse)
    calls = []
    gan.G.register_forward_hook(lambda *args: calls.append(1))
    step(batches, 1)
    assert len(calls) == passes


def test_training_is_reproducible_from_the_seed(tmp_path):
    cfg = compose_config(TINY)
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b")
    a = load_checkpoint(tmp_path / "a")
    b = load_checkpoint(tmp_path / "b")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_gan_train_leaves_the_documented_run_directory(tmp_path):
    out = run_gan("train", "train.steps=30", "train.sample_every=10", "train.ckpt_every=10",
                  "train.log_every=10", *[t for t in TINY if not t.startswith("train.")],
                  "hydra.run.dir=run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = tmp_path / "run"
    assert (run / ".hydra" / "config.yaml").is_file()
    assert (run / "checkpoints" / "last.pt").is_file()
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == [
        "step_0000010.pt", "step_0000020.pt", "step_0000030.pt"]
    assert len(list((run / "samples").glob("step_*.png"))) == 3
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g"} <= set(records[0])

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    assert {"loss/d", "loss/g", "D/real", "D/fake", "grad_norm/d"} <= set(events.Tags()["scalars"])
    assert "samples" in events.Tags()["images"]

    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 30 and state["config"]["model"]["name"] == "dcgan"


def test_default_run_dir_is_under_outputs(tmp_path):
    out = run_gan("train", *TINY, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = list((tmp_path / "outputs").glob("*/*_mnist5k_dcgan_gan"))
    assert len(runs) == 1 and (runs[0] / "checkpoints" / "last.pt").is_file()


def test_multirun_leaves_one_directory_per_job(tmp_path):
    out = run_gan("train", "-m", "loss=gan", "train.steps=3", "seed=1,2", *TINY[:1],
                  "model.width_g=8", "model.width_d=8", "train.batch_size=16",
                  "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    seeds = [load_checkpoint(tmp_path / "sweep" / j)["config"]["seed"] for j in jobs]
    assert seeds == [1, 2]

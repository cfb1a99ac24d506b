"""Speed settings keep training correct: mixed precision, channels_last, compile, reuse."""

import json

import pytest
import torch

from gancli.data import build_dataset
from gancli.errors import ConfigError
from gancli.models import build_model
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from gancli.training.speed import Precision, autocast_dtype, use_channels_last
from tests.helpers import TINY, compose_config


def _losses(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_auto_precision_is_fp32_on_the_cpu():
    assert autocast_dtype(Precision.auto, torch.device("cpu")) is None
    assert autocast_dtype(Precision.bf16, torch.device("cpu")) is torch.bfloat16


@pytest.mark.parametrize("precision,loss", [("bf16", "gan"), ("fp16", "wgan-gp"),
                                            ("fp16", "hinge")])
def test_mixed_precision_trains_every_loss_with_finite_values(tmp_path, precision, loss):
    # fp16 runs with a GradScaler per network; penalties are computed in fp32
    cfg = compose_config([*TINY, f"loss={loss}", f"train.precision={precision}",
                          "train.steps=6", "train.log_every=1", "train.n_critic=1"])
    train(cfg, tmp_path)
    records = _losses(tmp_path)
    assert len(records) == 6
    assert all(torch.isfinite(torch.tensor([r["d_loss"], r["g_loss"]])).all() for r in records)
    state = load_checkpoint(tmp_path)
    scaler = state["update"]["scalers"]["d"]
    assert (scaler.get("scale") is not None) == (precision == "fp16")  # scaler only for fp16


def test_channels_last_reaches_frozen_helpers_too():
    # the self-conditioned GAN's frozen trunk reads every real batch; left NCHW, each of its
    # convolutions would convert the NHWC batch (random weights: only the layout is under test)
    cfg = compose_config(["dataset=mnist5k", "model=selfcond", "model.width_g=8",
                          "model.width_d=8", "model.clusters=4", "model.cluster_items=40"])
    family = build_model(cfg.model, build_dataset(cfg.dataset).info)
    use_channels_last(family)
    convs = [m.weight for m in family.modules() if isinstance(m, torch.nn.Conv2d)]
    trunk = [m.weight for m in family.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert trunk and len(convs) > len(trunk)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)


def _curve(tmp_path, name, *overrides):
    cfg = compose_config(["dataset=mnist5k", "model=dcgan", "model.width_g=8",
                          "model.width_d=8", "device=cpu", "train.batch_size=16",
                          "train.steps=120", "train.log_every=1",
                          "train.sample_every=1000", "train.ckpt_every=1000", *overrides])
    train(cfg, tmp_path / name)
    records = _losses(tmp_path / name)
    return torch.tensor([[r["d_loss"], r["g_loss"]] for r in records])


@pytest.mark.slow
def test_channels_last_follows_the_fp32_eager_loss_curve(tmp_path):
    # Same seed, same data order, same noise: only the memory format differs, so the curves
    # start equal up to float rounding. GAN dynamics amplify rounding over many steps, so
    # the tolerance is stated on 40-step window means: within 0.1 in loss units.
    eager = _curve(tmp_path, "eager", "train.channels_last=off")
    fast = _curve(tmp_path, "fast", "train.channels_last=on")
    assert torch.allclose(eager[:5], fast[:5], atol=1e-3)
    windows = lambda c: c.reshape(3, 40, 2).mean(dim=1)  # noqa: E731
    assert torch.allclose(windows(eager), windows(fast), atol=0.1)


@pytest.mark.slow
def test_compiled_networks_follow_the_eager_loss_curve(tmp_path):
    eager = _curve(tmp_path, "eager", "train.steps=60")
    compiled = _curve(tmp_path, "compiled", "train.steps=60", "train.compile=true")
    assert torch.allclose(eager[:5], compiled[:5], atol=1e-3)
    windows = lambda c: c.reshape(2, 30, 2).mean(dim=1)  # noqa: E731
    assert torch.allclose(windows(eager), windows(compiled), atol=0.1)


@pytest.mark.parametrize("overrides,key", [(["loss.r1=1"], "loss.r1"),
                                           (["loss=wgan-gp"], "loss.gp")])
def test_compile_with_a_gradient_penalty_fails_before_training(tmp_path, overrides, key):
    # torch.compile's autograd has no double backward: without the check the run died with
    # torch's traceback at the first penalty step
    cfg = compose_config([*TINY, *overrides, "train.compile=true"])
    with pytest.raises(ConfigError, match=rf"train.compile=true cannot train with {key}.*"
                                          rf"train.compile=false or {key}=0"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.gpu
def test_bf16_follows_the_fp32_loss_curve_on_the_gpu(tmp_path):
    def curve(name, precision):
        cfg = compose_config(["dataset.resolution=32", "device=cuda", "train.steps=300",
                              "train.log_every=1", "train.sample_every=1000",
                              "train.ckpt_every=1000", f"train.precision={precision}"])
        train(cfg, tmp_path / name)
        records = _losses(tmp_path / name)
        return torch.tensor([[r["d_loss"], r["g_loss"]] for r in records])

    fp32, bf16 = curve("fp32", "fp32"), curve("bf16", "bf16")
    windows = lambda c: c.reshape(6, 50, 2).mean(dim=1)  # noqa: E731
    assert torch.allclose(windows(fp32), windows(bf16), atol=0.15)

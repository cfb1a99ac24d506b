"""BigGAN: its pieces against their definitions, the truncation trick and standing statistics
for every model that samples z, the truncation curve of `gan eval`, and the family through the
real training loop (resume, torchrun). Networks have random weights where only shapes and
wiring are tested."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gancli.cli import main
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.losses import build_loss
from gancli.losses.penalties import layer_weights, orthogonal_penalty
from gancli.models import build_model
from gancli.models.biggan import SelfAttention
from gancli.models.family import truncated_normal
from gancli.sampling import SampleArgs, load_gan, run_sample
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from tests.helpers import compose_config, run_gan

DIGITS = DataInfo("mnist5k", "image", (1, 28, 28), num_classes=10)
SMALL = ["model=biggan", "model.width_g=2", "model.width_d=2", "model.shared_dim=8",
         "model.z_dim=12", "model.attention=16", "loss=hinge", "loss.ortho=1e-4"]
FAST = [*SMALL, "device=cpu", "device.threads=1", "train.batch_size=16", "train.log_every=2",
        "train.sample_every=4", "train.ckpt_every=4", "train.num_samples=20",
        "train.ema.decay=0.9"]


def _biggan(*overrides: str):
    cfg = compose_config([*SMALL, *overrides])
    return build_model(cfg.model, DIGITS)


def test_shared_embedding_and_hierarchical_chunks_have_the_reference_shapes():
    gan = _biggan()  # 28x28: two G blocks, so z is cut into 3 chunks of 12 // 3 = 4
    G = gan.G
    assert gan.z_dim == G.z_dim == 12 and G.chunk == 4
    assert G.shared.weight.shape == (10, 8)  # one table for all blocks
    z, y = torch.randn(5, 12), torch.tensor([0, 1, 2, 3, 9])
    first, conditions = G.conditions(z, y)
    assert first.shape == (5, 4) and len(conditions) == len(G.blocks) == 2
    for i, condition in enumerate(conditions):  # [shared(y) | the block's own chunk]
        assert condition.shape == (5, 8 + 4)
        assert torch.equal(condition[:, :8], G.shared(y))
        assert torch.equal(condition[:, 8:], z[:, 4 * (i + 1):4 * (i + 2)])
    assert torch.equal(first, z[:, :4])
    assert G.linear.in_features == 4
    assert G(z, y).shape == (5, 1, 28, 28)
    assert gan.sample_latent(3, torch.device("cpu")).shape == (3, 12)


def test_z_is_rounded_down_to_whole_chunks_and_flat_without_hier():
    assert _biggan("model.z_dim=13").z_dim == 12  # the reference drops the remainder
    flat = _biggan("model.hier=false").G
    z, y = torch.randn(2, 12), torch.tensor([4, 5])
    first, conditions = flat.conditions(z, y)
    assert torch.equal(first, z) and all(torch.equal(c, flat.shared(y)) for c in conditions)


def test_self_attention_keeps_shapes_and_starts_as_the_identity():
    attention = SelfAttention(16)
    x = torch.randn(2, 16, 14, 14)
    assert attention(x).shape == x.shape
    assert attention.gamma.item() == 0 and torch.equal(attention(x), x)
    gan = _biggan()  # attention=16 on 28x28: the 14x14 maps of G and D
    layers = [m for net in (gan.G, gan.D) for m in net.modules() if isinstance(m, SelfAttention)]
    assert len(layers) == 2 and all(layer.gamma.item() == 0 for layer in layers)
    assert isinstance(gan.G.attention[0], SelfAttention)  # after the 7 -> 14 block
    assert not any(isinstance(m, SelfAttention) for m in _biggan("model.attention=none")
                   .modules())


def test_spectral_norm_everywhere_but_the_shared_embedding():
    gan = _biggan()
    assert not hasattr(gan.G.shared, "parametrizations")
    assert hasattr(gan.G.linear, "parametrizations") and hasattr(gan.D.embed, "parametrizations")
    assert all(hasattr(m, "parametrizations") for net in (gan.G, gan.D) for m in net.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_orthogonal_penalty_is_its_formula_on_a_small_matrix():
    w = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]])
    # rows (1, 2, 0) and (0, 1, -1): one off-diagonal product, 2, counted twice
    assert orthogonal_penalty([w]).item() == pytest.approx(2 * 2.0 ** 2)
    conv = torch.randn(4, 2, 3, 3)
    rows = conv.reshape(4, -1)
    expected = sum((rows[i] @ rows[j]) ** 2 for i in range(4) for j in range(4) if i != j)
    assert orthogonal_penalty([conv]).item() == pytest.approx(expected.item(), rel=1e-5)
    assert orthogonal_penalty([torch.eye(3)]).item() == 0


def test_loss_ortho_gives_the_reference_gradient_on_g_alone():
    class TwoLayers(nn.Module):
        def __init__(self):
            super().__init__()
            self.G = nn.Sequential(spectral_norm(nn.Linear(3, 4)), nn.Embedding(5, 3))

    torch.manual_seed(0)
    gan, beta = TwoLayers(), 1e-2
    loss = build_loss(compose_config(["loss=hinge", f"loss.ortho={beta}"]).loss)
    w = gan.G[0].parametrizations.weight.original
    assert layer_weights(gan.G) == [w]  # the raw weight; embeddings are left out
    loss.g_penalty(gan).backward()
    m = (w @ w.T) * (1 - torch.eye(4))
    torch.testing.assert_close(w.grad, beta * 2 * (m @ w).detach())  # BigGAN-PyTorch's ortho
    assert build_loss(compose_config(["loss=hinge"]).loss).g_penalty(gan) is None  # 0: off


def test_truncated_normal_draws_stay_within_the_threshold():
    gen = torch.Generator().manual_seed(0)
    z = truncated_normal((2000, 16), 0.5, "cpu", gen)
    assert z.abs().max() <= 0.5 and z.std() < 0.35  # uniform on [-.5, .5] would be 0.29
    again = truncated_normal((2000, 16), 0.5, "cpu", torch.Generator().manual_seed(0))
    assert torch.equal(z, again)
    with pytest.raises(ConfigError, match="truncation must be > 0"):
        truncated_normal((2,), -1, "cpu")


@pytest.mark.parametrize("model", ["dcgan", "biggan", "infogan"])
def test_every_model_that_samples_z_draws_truncated_inside_the_context(model):
    gan = build_model(compose_config([f"model={model}"] + SMALL[1:] * (model == "biggan"))
                      .model, DIGITS)
    plain = gan.sample_latent(500, torch.device("cpu"))
    with gan.truncation(0.25):
        cut = gan.sample_latent(500, torch.device("cpu"))
    assert plain.abs().max() > 2 and gan._truncation is None
    noise = cut[:, :gan.z_dim]  # infogan: the codes after the noise are drawn as ever
    assert noise.abs().max() <= 0.25


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A biggan trained 8 steps (with EMA) on mnist5k: random-looking, but every path runs."""
    run = tmp_path_factory.mktemp("biggan") / "run"
    train(compose_config([*FAST, "train.steps=8"]), run)
    return run


def test_resume_is_bit_identical(tmp_path, trained):
    train(compose_config([*FAST, "train.steps=4"]), tmp_path)
    train(compose_config([*FAST, "train.steps=8", f"resume={tmp_path}"]), tmp_path)
    a, b = load_checkpoint(trained), load_checkpoint(tmp_path)
    assert a["step"] == b["step"] == 8 and a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    last = json.loads((trained / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["g_penalty"] > 0  # loss.ortho is on, and logged


def test_sample_class_rows_label_truncation_and_standing_stats(tmp_path, trained):
    grid = run_sample(SampleArgs(ckpt=str(trained), out=str(tmp_path / "g.png"), n=20))
    assert Image.open(grid).size == (2 * 30 + 2, 10 * 30 + 2)  # a row per class, 2 each
    out = run_sample(SampleArgs(ckpt=str(trained), out=str(tmp_path / "s.npz"), n=6, label=3,
                                truncation=0.5, standing_stats=2, batch_size=8))
    data = np.load(out)
    assert (data["labels"] == 3).all() and np.isfinite(data["samples"]).all()
    plain = np.load(run_sample(SampleArgs(ckpt=str(trained), out=str(tmp_path / "p.npz"), n=6,
                                          label=3)))["samples"]
    assert not np.array_equal(plain, data["samples"])


def test_standing_stats_reestimate_the_generators_batchnorm(trained):
    from gancli.sampling import standing_statistics

    gan, _ = load_gan(trained, torch.device("cpu"))
    norm = gan.G.out[0]
    before = norm.running_mean.clone()
    standing_statistics(gan, 3, 16, torch.device("cpu"), seed=0)
    assert not torch.equal(before, norm.running_mean) and norm.num_batches_tracked == 3
    assert not gan.G.training and norm.momentum == 0.1  # restored


def test_eval_prints_and_plots_a_truncation_curve(tmp_path, trained, capsys):
    out, plot = tmp_path / "curve.json", tmp_path / "curve.png"
    main(["eval", f"ckpt={trained}", "extractor=mnist", "n=120", "truncation=2,0.5",
          "standing_stats=2", f"out={out}", f"plot={plot}", f"cache_dir={tmp_path}"])
    printed = capsys.readouterr().out
    assert "truncation curve" in printed and "class_accuracy" in printed
    result = json.loads(out.read_text())
    assert result["fake"]["standing_stats"] == 2
    rows = result["curve"]
    assert [r["truncation"] for r in rows] == [2.0, 0.5]
    for row in rows:
        assert {"mnist_fid", "mnist_precision", "mnist_recall", "class_accuracy"} <= set(row)
        assert 0 <= row["class_accuracy"] <= 1
    assert rows[0]["mnist_fid"] != rows[1]["mnist_fid"]
    assert Image.open(plot).size[0] > 300


def test_a_bad_attention_fails_in_one_line(tmp_path):
    out = run_gan("train", *SMALL, "model.attention=7", "device=cpu", cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "model.attention must be one of 16, 32, none, got '7'" in out.stderr


@pytest.mark.parametrize("args, message", [
    (["sample", "ckpt=x", "truncation=-1"], "truncation must be > 0, got -1"),
    (["eval", "ckpt=x", "truncation=1,-1"], "truncation values must be > 0, got -1"),
    (["eval", "ckpt=x", "plot=c.png"], "plot= draws a truncation curve"),
    (["sample", "ckpt=x", "standing_stats=-2"], "standing_stats must be >= 0"),
])
def test_bad_values_fail_in_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.count("\n") == 1 and message in err, err


def test_standing_stats_without_batchnorm_is_refused(tmp_path):
    train(compose_config(["model=mlp", "dataset=ring8", "dataset.size=256", "device=cpu",
                          "train.steps=2", "train.batch_size=16", "train.sample_every=2",
                          "train.ckpt_every=2", "train.num_samples=8",
                          "model.batchnorm_g=false"]), tmp_path)
    with pytest.raises(ConfigError, match="has no BatchNorm layer"):
        run_sample(SampleArgs(ckpt=str(tmp_path), out=str(tmp_path / "s.npz"), n=4,
                              standing_stats=2))


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_trains_biggan(tmp_path):
    from tests.test_distributed import assert_ranks_share_parameters, torchrun

    out = torchrun("train", *FAST, "train.steps=4", "hydra.run.dir=run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert_ranks_share_parameters(tmp_path / "run")  # BatchNorm and attention under DDP
    assert load_checkpoint(tmp_path / "run")["step"] == 4

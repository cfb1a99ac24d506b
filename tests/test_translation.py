"""CycleGAN and pix2pix (gancli/models/cyclegan.py, pix2pix.py, translation.py) and their data
(gancli/data/translation.py, translation_files.py): network shapes, the image pool, the loss
terms on fixed inputs, the loaders on awkward files, clear errors, exact resume, torchrun.
Networks with random weights are used where only wiring and shapes are tested."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gancli.cli import parse_args
from gancli.config import typed_block
from gancli.data import build_dataset
from gancli.data.base import DataInfo
from gancli.errors import ConfigError, GanError
from gancli.losses import build_loss
from gancli.models import build_model
from gancli.models.cyclegan import ImagePool
from gancli.models.translation import (
    PatchDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    patch_output_side,
    unet_levels,
)
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from gancli.training.step import StepContext, StepOptions
from gancli.translate import TranslateArgs, pair_grid
from tests.helpers import compose_config

PAIR_INFO = DataInfo("t", "image", (1, 28, 28), 10, domains=2)
TINY_CYCLE = ["+experiment=cyclegan_digits2mnist", "device=cpu", "device.threads=1",
              "model.width_g=4", "model.width_d=4", "model.g_arch=resnet6",
              "model.pool_size=4", "train.batch_size=4", "train.log_every=2",
              "train.sample_every=1000", "train.num_samples=4"]
TINY_PIX = ["+experiment=pix2pix_edges2mnist", "device=cpu", "device.threads=1",
            "model.width_g=4", "model.width_d=4", "train.batch_size=4", "train.log_every=2",
            "train.sample_every=1000", "train.num_samples=4"]


@pytest.mark.parametrize("blocks", [9, 6])
@pytest.mark.parametrize("side", [28, 32])
def test_resnet_generators_keep_the_image_shape(blocks, side):
    G = ResnetGenerator(3, 3, 4, blocks)
    assert G(torch.randn(2, 3, side, side)).shape == (2, 3, side, side)


@pytest.mark.parametrize("side,levels", [(28, 2), (32, 5), (256, 8)])
def test_unet_is_as_deep_as_the_side_allows(side, levels):
    assert unet_levels(side, 8) == levels
    if side <= 32:
        G = UnetGenerator(1, 1, 4, levels, dropout=0.5)
        assert G(torch.randn(2, 1, side, side)).shape == (2, 1, side, side)


@pytest.mark.parametrize("layers", [0, 1, 2, 3])
def test_patch_discriminators_score_patches(layers):
    side = 40 if layers == 3 else 28
    D = PatchDiscriminator(2, 4, layers)
    out = D(torch.randn(2, 2, side, side))
    expected = patch_output_side(side, layers)
    assert out.shape == (2, 1, expected, expected)


def test_three_layers_see_70x70_patches():
    D = PatchDiscriminator(1, 2, 3)
    for i, layer in enumerate(D.net):  # instance norm couples all pixels: off for this test
        if isinstance(layer, nn.InstanceNorm2d):
            D.net[i] = nn.Identity()
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    out = D(x)
    out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2].backward()
    rows, cols = (x.grad[0, 0].abs().sum(dim=d).nonzero() for d in (1, 0))
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_patchgan_too_deep_for_the_images_is_one_line():
    cfg = typed_block("model", {"name": "cyclegan", "d_layers": 5, "width_g": 4}, "model")
    with pytest.raises(ConfigError, match="model.d_layers=5 is too deep"):
        build_model(cfg, PAIR_INFO)


def test_translators_refuse_single_domain_data():
    cfg = typed_block("model", {"name": "cyclegan"}, "model")
    with pytest.raises(ConfigError, match="not a translation dataset"):
        build_model(cfg, DataInfo("mnist5k", "image", (1, 28, 28), 10))


def test_pool_fills_then_swaps_with_probability_one_half():
    pool = ImagePool(2, (1, 1, 1))
    first = torch.tensor([1.0, 2.0]).view(2, 1, 1, 1)
    out = pool.query(first, torch.tensor([[0.9, 0.0], [0.9, 0.0]]))
    assert torch.equal(out, first) and int(pool.filled) == 2  # filling: returned as is
    new = torch.tensor([3.0, 4.0]).view(2, 1, 1, 1)
    # the first draw swaps with slot 1 (returns 2, stores 3); the second keeps its image
    out = pool.query(new, torch.tensor([[0.7, 0.6], [0.2, 0.0]]))
    assert out.flatten().tolist() == [2.0, 4.0]
    assert pool.images.flatten().tolist() == [1.0, 3.0]
    assert "pool_a.images" in build_model(typed_block("model", {"name": "cyclegan",
                                                                "width_g": 4}, "model"),
                                          PAIR_INFO).state_dict()


def test_pool_of_size_zero_passes_images_through():
    x = torch.randn(3, 1, 2, 2)
    assert ImagePool(0, (1, 2, 2)).query(x, torch.rand(3, 2)) is x


class Shift(nn.Module):
    """x + c: a generator whose effect is known exactly."""

    def __init__(self, c: float):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x):
        return x + self.c


def test_cycle_and_identity_terms_on_fixed_inputs():
    cfg = typed_block("model", {"name": "cyclegan", "width_g": 4, "width_d": 4, "d_layers": 1,
                                "lambda_a": 10.0, "lambda_b": 2.0, "lambda_identity": 0.5},
                      "model")
    family = build_model(cfg, DataInfo("t", "image", (1, 8, 8), 0, domains=2))
    family.G_ab, family.G_ba = Shift(0.25), Shift(-0.25)  # inverse maps: no cycle error
    optimizers = {name: torch.optim.SGD(params, lr=0.0)
                  for name, params in family.param_groups().items()}
    loss = build_loss(typed_block("loss", {"name": "lsgan"}, "loss"))
    ctx = StepContext(loss, optimizers, StepOptions(batch_size=2), torch.device("cpu"))
    x = torch.zeros(2, 2, 8, 8)
    stats = {}
    family.train_step(ctx, iter([(x, None)]), 1, stats)
    assert stats["cycle_a"] == pytest.approx(0.0) and stats["cycle_b"] == pytest.approx(0.0)
    assert stats["idt_a"] == pytest.approx(10.0 * 0.5 * 0.25)  # |G_ba(a) - a| = 0.25
    assert stats["idt_b"] == pytest.approx(2.0 * 0.5 * 0.25)
    family.G_ba = Shift(0.0)  # now A -> B -> A is off by 0.25
    family.train_step(ctx, iter([(x, None)]), 2, stats)
    assert stats["cycle_a"] == pytest.approx(10.0 * 0.25)
    assert stats["cycle_b"] == pytest.approx(2.0 * 0.25)


def _image(path, mode, size, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = np.full((size[1], size[0], channels), value, dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)


def _unpaired_folder(root):
    _image(root / "trainA" / "a1.png", "L", (37, 23))
    _image(root / "trainA" / "a2.png", "RGBA", (19, 30))
    _image(root / "trainB" / "b1.png", "RGB", (41, 41))
    _image(root / "trainB" / "sub" / "b2.jpg", "L", (17, 25))
    _image(root / "testA" / "t1.png", "RGBA", (33, 21))
    _image(root / "testB" / "t2.png", "RGB", (16, 16))


@pytest.mark.parametrize("channels", [1, 3])
def test_cyclegan_folder_reads_odd_sizes_grey_rgb_and_rgba(tmp_path, channels):
    _unpaired_folder(tmp_path)
    cfg = typed_block("dataset", {"name": "cyclegan_folder", "root": str(tmp_path),
                                  "channels": channels, "load_size": 14, "crop_size": 12},
                      "dataset")
    data = build_dataset(cfg)
    assert data.info.shape == (channels, 12, 12) and data.info.domains == 2
    assert data.test_a[0].shape == (1, channels, 12, 12)
    x, y = next(data.batches(data.sampler(2, 0), torch.device("cpu")))
    assert x.shape == (2, 2 * channels, 12, 12) and y is None
    assert x.min() >= -1 and x.max() <= 1


def test_paired_side_by_side_and_matching_folders(tmp_path):
    _image(tmp_path / "sbs" / "train" / "1.jpg", "RGB", (40, 19))
    _image(tmp_path / "sbs" / "train" / "2.png", "L", (31, 15))
    _image(tmp_path / "sbs" / "val" / "3.png", "RGBA", (22, 11))
    data = build_dataset(typed_block("dataset", {"name": "paired", "root": str(tmp_path / "sbs"),
                                                 "load_size": 10, "crop_size": 8}, "dataset"))
    x, _ = next(data.batches(data.sampler(2, 0), torch.device("cpu")))
    assert x.shape == (2, 6, 8, 8) and data.test_b[0].shape == (1, 3, 8, 8)
    for part, value in (("trainA", 0), ("trainB", 255), ("testA", 0), ("testB", 255)):
        _image(tmp_path / "f" / part / "x.png", "L", (13, 9), value)
    data = build_dataset(typed_block("dataset", {"name": "paired", "root": str(tmp_path / "f"),
                                                 "layout": "folders", "channels": 1,
                                                 "load_size": 8, "crop_size": 8}, "dataset"))
    x, _ = next(data.batches(data.sampler(1, 0), torch.device("cpu")))
    # A (black) and B (white) stay apart and aligned
    assert torch.allclose(x[:, 0], torch.tensor(-1.0), atol=1e-4)
    assert torch.allclose(x[:, 1], torch.tensor(1.0), atol=1e-4)


def test_digits2mnist_and_edges2mnist_hold_out_labeled_items():
    data = build_dataset(typed_block("dataset", {"name": "digits2mnist"}, "dataset"))
    assert data.test_a[0].shape == (300, 1, 28, 28) and data.test_b[0].shape == (500, 1, 28, 28)
    assert torch.equal(data.test_a[1].bincount(), torch.full((10,), 30))
    assert len(data.a) == 1797 - 300 and len(data.b) == 4500
    wide = build_dataset(typed_block("dataset", {"name": "digits2mnist", "side": 32}, "dataset"))
    assert wide.info.shape == (1, 32, 32)
    assert torch.equal(wide.test_b[0][:, :, 2:30, 2:30], data.test_b[0])  # black borders
    assert torch.all(wide.test_b[0][:, :, :2] == -1)
    pairs = build_dataset(typed_block("dataset", {"name": "edges2mnist"}, "dataset"))
    assert pairs.paired and pairs.test_a[0].shape == (500, 1, 28, 28)
    assert set(pairs.test_a[0].unique().tolist()) <= {-1.0, 1.0}  # binary edge maps


def test_mnist_framing_fits_the_ink_box_and_centres_the_mass():
    from gancli.data.translation import mnist_framed

    digit = torch.zeros(8, 8)
    digit[1:7, 5:7] = 255.0  # a thin upright stroke at the right
    framed = mnist_framed(digit, 20)
    rows, cols = (torch.nonzero(framed.amax(dim=d) > 0).flatten() for d in (1, 0))
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 < 10  # aspect kept
    mass = framed.sum()
    cy = (framed.sum(dim=1) * torch.arange(28)).sum() / mass
    cx = (framed.sum(dim=0) * torch.arange(28)).sum() / mass
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1


def test_unpaired_takes_any_two_registered_datasets():
    cfg = typed_block("dataset", {"name": "unpaired", "a": {"name": "digits", "resolution": 28},
                                  "b": {"name": "mnist5k"}, "holdout_a": 2, "holdout_b": 3},
                      "dataset")
    data = build_dataset(cfg)
    assert data.test_a[0].shape == (20, 1, 28, 28) and data.test_b[0].shape == (30, 1, 28, 28)
    x, y = next(data.batches(data.sampler(4, 0), torch.device("cpu")))
    assert x.shape == (4, 2, 28, 28) and y.shape == (4, 2)
    bad = {"name": "unpaired", "b": {"name": "mnist5k", "resolution": 14}}
    with pytest.raises(ConfigError, match="same shape"):
        build_dataset(typed_block("dataset", bad, "dataset"))


def test_missing_trainB_is_one_line(tmp_path):
    _unpaired_folder(tmp_path)
    for f in (tmp_path / "trainB").rglob("*.*"):
        f.unlink()
    cfg = typed_block("dataset", {"name": "cyclegan_folder", "root": str(tmp_path)}, "dataset")
    with pytest.raises(GanError, match="holds no image files") as empty:
        build_dataset(cfg)
    for d in sorted((tmp_path / "trainB").rglob("*"), reverse=True):
        d.rmdir()
    (tmp_path / "trainB").rmdir()
    with pytest.raises(GanError, match="trainB is missing") as missing:
        build_dataset(cfg)
    for err in (empty, missing):
        assert "\n" not in str(err.value)


def test_named_dataset_offline_says_where_to_put_the_files(tmp_path, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    cfg = typed_block("dataset", {"name": "horse2zebra", "root": str(tmp_path)}, "dataset")
    with pytest.raises(GanError) as err:
        build_dataset(cfg)
    message = str(err.value)
    assert "\n" not in message and "cyclegan/datasets/horse2zebra.zip" in message
    assert f"{tmp_path / 'horse2zebra'}/ (trainA/ trainB/ testA/ testB/)" in message


@pytest.mark.parametrize("group,name", [("cyclegan_folder", "horse2zebra"),
                                        ("paired", "facades")])
def test_download_is_a_plain_key_of_the_folder_groups(tmp_path, group, name):
    # dataset.download=false without a "+": the key is in the group's YAML
    cfg = compose_config([f"dataset={group}", f"dataset.name={name}",
                          f"dataset.root={tmp_path}", "dataset.download=false"])
    assert cfg.dataset.download is False
    with pytest.raises(GanError) as err:
        build_dataset(cfg.dataset)
    assert "\n" not in str(err.value) and "set dataset.download=true" in str(err.value)


def test_bad_direction_is_one_line_naming_the_choices():
    with pytest.raises(ConfigError) as err:
        parse_args(TranslateArgs, ["direction=x"], "translate")
    assert "direction" in str(err.value) and "a2b" in str(err.value)
    assert "\n" not in str(err.value)


def test_pair_grid_puts_inputs_above_outputs():
    inputs, outputs = -torch.ones(3, 1, 2, 2), torch.ones(3, 1, 2, 2)
    grid = pair_grid(inputs, outputs, columns=2)
    assert grid.shape == (1, 4 * 4 + 2, 2 * 4 + 2)
    assert grid[0, 2, 2] == 0 and grid[0, 6, 2] == 255  # row 1: inputs (black), row 2: outputs


def _resume_is_exact(tmp_path, args):
    """6 steps in one go == 6 steps resumed from the step-3 checkpoint of the same run (its
    linear rate schedule mid-way)."""
    run = [*args, "train.steps=6", "train.ckpt_every=3"]
    train(compose_config(run), tmp_path / "full")
    middle = tmp_path / "full" / "checkpoints" / "step_0000003.pt"
    train(compose_config([*run, f"resume={middle}"]), tmp_path / "resumed")
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "resumed")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:  # networks and, for CycleGAN, both image pools
        assert torch.equal(a["model"][key], b["model"][key]), key
    for name in a["optimizers"]:
        for x, y in zip(a["optimizers"][name]["state"].values(),
                        b["optimizers"][name]["state"].values(), strict=True):
            assert all(torch.equal(x[k], y[k]) for k in x)
    assert a["schedules"] == b["schedules"]
    return a


def _evaluated(run_dir) -> dict:
    from gancli.metrics.evaluate import EvalArgs, run_eval

    return run_eval(EvalArgs(ckpt=str(run_dir), extractor="mnist", device="cpu"))["metrics"]


def test_cyclegan_resume_is_bit_identical_and_gan_eval_measures_it(tmp_path):
    state = _resume_is_exact(tmp_path, [*TINY_CYCLE, "model.pool_size=6"])
    assert int(state["model"]["pool_a.filled"]) == 6  # the pool filled, then swapped
    assert state["schedules"]["g"]["last_epoch"] == 6
    metrics = _evaluated(tmp_path / "full")
    assert set(metrics) == {"mnist_fid_a2b", "mnist_fid_b2a", "label_source_a", "label_a2b",
                            "label_source_b", "label_b2a", "label_cycle_a", "label_cycle_b"}
    assert metrics["label_source_b"] > 0.9  # untranslated MNIST: the classifier's own data


def test_translator_evaluates_during_training_and_loads_its_ema_sampler(tmp_path):
    # train.eval_every: mnist_fid of G_ab's (EMA) translations of held-out A against domain B
    run = [*TINY_CYCLE, "train.steps=2", "train.eval_every=2", "train.eval_metric=mnist_fid",
           "train.eval_n=20", "train.ema.decay=0.9"]
    best = train(compose_config(run), tmp_path / "run")
    assert 0 < best < float("inf")
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    # train.ema averages the sampler G_ab; gan eval, sample and translate load the average
    from gancli.translate import load_translator

    state = load_checkpoint(tmp_path / "run")
    family, _ = load_translator(tmp_path / "run", torch.device("cpu"))
    for key, value in family.G_ab.state_dict().items():
        assert torch.equal(value, state["ema"][key]), key
    assert not all(torch.equal(state["ema"][k], state["model"][f"G_ab.{k}"])
                   for k in state["ema"])


def test_pix2pix_resume_is_bit_identical_and_gan_eval_measures_it(tmp_path):
    _resume_is_exact(tmp_path, TINY_PIX)
    metrics = _evaluated(tmp_path / "full")
    assert {"mnist_fid_a2b", "label_a2b", "l1", "psnr", "ssim"} <= set(metrics)
    assert "mnist_fid_b2a" not in metrics  # pix2pix translates one way


def test_paired_scores_of_identical_and_opposite_images():
    from gancli.metrics.translation import paired_scores

    x = torch.rand(3, 1, 16, 16) * 2 - 1
    same = paired_scores(x, x)
    assert same["l1"] == 0 and same["ssim"] == pytest.approx(1.0) and same["psnr"] > 100
    far = paired_scores(-torch.ones(2, 1, 16, 16), torch.ones(2, 1, 16, 16))
    assert far["l1"] == 1 and far["psnr"] == pytest.approx(0.0) and far["ssim"] < 0.01


@pytest.mark.slow
def test_torchrun_with_two_cpu_ranks_trains_cyclegan(tmp_path):
    """Both ranks train the same networks (DDP), rank 0 alone writes the run directory."""
    from tests.test_distributed import torchrun

    out = torchrun("train", *TINY_CYCLE, "train.steps=4", "train.ckpt_every=2",
                   "hydra.run.dir=run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    run = tmp_path / "run"
    state = load_checkpoint(run)
    assert state["step"] == 4
    ranks = [torch.load(run / f"rank{r}.pt", weights_only=True)["model"] for r in (0, 1)]
    for key in ranks[0]:
        if not key.startswith("pool_"):  # each rank pools its own generated images
            assert torch.equal(ranks[0][key], ranks[1][key]), key


@pytest.mark.parametrize("layers", [0, 2])
def test_patchgan_as_the_discriminator_of_an_image_gan(tmp_path, layers):
    from gancli.models.translation import PatchDiscriminator

    cfg = compose_config(["model=dcgan", "model.d_arch=patchgan", f"model.d_layers={layers}",
                          "model.width_g=4", "model.width_d=4", "model.pack=2", "device=cpu",
                          "device.threads=1", "train.steps=2", "train.batch_size=8",
                          "train.sample_every=2", "train.num_samples=4"])
    train(cfg, tmp_path)
    gan = build_model(cfg.model, DataInfo("mnist5k", "image", (1, 28, 28), 10))
    assert isinstance(gan.D, PatchDiscriminator)
    assert gan.discriminate(torch.randn(8, 1, 28, 28)).shape == (4,)  # packs of 2
    assert load_checkpoint(tmp_path)["step"] == 2



def test_linear_schedule_holds_the_rate_until_decay_start():
    from gancli.training.schedules import lr_factor

    factors = [lr_factor("linear", step, 10, 0.5) for step in range(11)]
    assert factors == pytest.approx([1.0] * 6 + [0.8, 0.6, 0.4, 0.2, 0.0])
    assert lr_factor("linear", 5, 10) == 0.5  # decay_start 0: linear from the start
    with pytest.raises(ConfigError, match="optimizer.decay_start"):
        typed_block("optimizer", {"name": "adam", "decay_start": 1.0}, "optimizer")

"""DiffAugment: each op does what it says on seeded batches, gradients pass through it, and the
training step shows D augmented real and generated images in both updates. Random images and
tiny random-weight networks: these tests check the transforms and the wiring, not quality."""

import pytest
import torch

from gancli.errors import ConfigError
from gancli.training.augment import Augment, DiffAugment, color, cutout, flip, translation
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from tests.helpers import TINY, compose_config
from tests.test_training import _one_iteration_setup


def _images(n=32, channels=3, size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=gen) * 2 - 1


def test_every_op_keeps_the_shape_and_is_reproducible_from_the_seed():
    x = _images()
    for op in (flip, color, translation, cutout):
        torch.manual_seed(3)
        a = op(x)
        torch.manual_seed(3)
        b = op(x)
        assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b)
        assert not torch.equal(a, x)


def test_flip_mirrors_some_samples_and_leaves_the_others():
    x = _images()
    torch.manual_seed(0)
    out = flip(x)
    mirrored = [torch.equal(o, s.flip(2)) for o, s in zip(out, x, strict=True)]
    kept = [torch.equal(o, s) for o, s in zip(out, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert any(mirrored) and any(kept)


def _shift(image, dy, dx):
    """image moved down by dy and right by dx, zeros where nothing moved in."""
    _, h, w = image.shape
    out = torch.zeros_like(image)
    out[:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] = \
        image[:, max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)]
    return out


def test_translation_shifts_each_sample_by_at_most_an_eighth_with_zero_fill():
    x = _images(size=16)
    torch.manual_seed(1)
    out = translation(x)
    shifts = set()
    for o, s in zip(out, x, strict=True):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(o, _shift(s, dy, dx))]
        assert len(found) == 1  # 16 / 8 = 2 pixels at most
        shifts.add(found[0])
    assert len(shifts) > 5


def test_cutout_zeroes_one_rectangle_of_at_most_half_the_size():
    x = torch.ones(32, 3, 16, 16)
    torch.manual_seed(2)
    out = cutout(x)
    for sample in out:
        assert torch.equal(sample[0], sample[1]) and torch.equal(sample[0], sample[2])
        rows, cols = torch.nonzero(sample[0] == 0, as_tuple=True)
        assert 0 < rows.numel() <= 8 * 8
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert rows.numel() == height * width and height <= 8 and width <= 8


def test_color_on_a_flat_grey_image_only_shifts_the_brightness():
    # equal channels: saturation has nothing to scale; one value: contrast neither
    x = torch.full((64, 3, 8, 8), 0.2)
    torch.manual_seed(4)
    shift = color(x) - x
    per_sample = shift.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-6)
    assert per_sample[:, 0].abs().max() <= 0.5 and per_sample[:, 0].std() > 0.1


def test_gradients_pass_through_the_whole_policy():
    x = _images().requires_grad_()
    DiffAugment([Augment.flip, Augment.color, Augment.translation, Augment.cutout])(x).sum() \
        .backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_step_augments_real_and_generated_images_in_both_updates():
    seen = []

    def record(x):
        seen.append(x.shape[0])
        return x + 1  # an "augmentation" D can tell apart

    gan, step, batches = _one_iteration_setup(augment=record)
    inputs = []
    gan.D.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach()))
    step(batches, 1)
    # D's update: the real batch, the generated batch; G's update: the generated batch again
    assert seen == [16, 16, 16] and len(inputs) == 3
    assert all(x.min() >= 0 for x in inputs)  # images in [-1, 1], shifted by the augmentation


def test_training_with_augmentation_runs_and_changes_the_run(tmp_path):
    policy = "train.augment=[flip,color,translation,cutout]"
    train(compose_config([*TINY, policy]), tmp_path / "aug")
    train(compose_config(TINY), tmp_path / "plain")
    aug = load_checkpoint(tmp_path / "aug" / "checkpoints" / "last.pt")
    plain = load_checkpoint(tmp_path / "plain" / "checkpoints" / "last.pt")
    assert aug["step"] == plain["step"] == 4
    assert any(not torch.equal(aug["model"][k], plain["model"][k]) for k in plain["model"]
               if k.startswith("G."))


@pytest.mark.parametrize("overrides,message", [
    (["train.augment=[blur]"],
     "invalid config at 'train.augment[0]': Invalid value 'blur', expected one of "
     "[flip, color, translation, cutout, rotate90]"),
    (["dataset=ring8", "model=mlp", "train.augment=[flip]"],
     "train.augment transforms images; dataset ring8 has points"),
])
def test_bad_augment_settings_fail_before_training(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        train(compose_config(["device=cpu", *overrides]), tmp_path)
    assert not (tmp_path / "checkpoints").exists()

"""Adaptive augmentation (train.augment_p=ada, StyleGAN2-ADA) and the per-image chance of the
DiffAugment ops: the controller's rule, the ops, checkpointing, and bad values."""

import json

import pytest
import torch

from gancli.errors import ConfigError
from gancli.training.augment import AdaptiveP, DiffAugment, rotate90
from gancli.training.checkpoint import load_checkpoint
from gancli.training.loop import train
from tests.helpers import TINY, compose_config


def test_p_rises_while_d_overfits_and_falls_back_to_zero():
    augment = DiffAugment(["flip"])
    ada = AdaptiveP(augment, target=0.6, interval=2, kimg=1.0, batch_size=100)
    assert augment.p == 0  # starts without augmentation
    for step in (1, 2):  # real scores 3 of 4 positive: r_t = 0.5 < 0.6
        ada.observe(torch.tensor([1.0, 2.0, 3.0, -1.0]))
        ada.adjust(step)
    assert ada.r_t == 0.5 and augment.p == 0  # clamped at 0
    for step in (3, 4):  # all positive: r_t = 1 > 0.6, p += 100 * 2 / 1000
        ada.observe(torch.ones(4))
        ada.adjust(step)
    assert ada.r_t == 1 and augment.p == pytest.approx(0.2)
    ada.observe(torch.ones(4))
    ada.adjust(5)  # not an adjustment step: p holds
    assert augment.p == pytest.approx(0.2)
    ada.observe(-torch.ones(4))
    ada.adjust(6)  # (4 - 4) / 8 = 0 < 0.6: down again
    assert ada.r_t == 0 and augment.p == pytest.approx(0.0)


def test_a_model_that_reports_no_real_scores_fails_clearly():
    ada = AdaptiveP(DiffAugment(["flip"]), target=0.6, interval=1, kimg=1.0, batch_size=8)
    with pytest.raises(RuntimeError, match="needs D's scores of real images"):
        ada.adjust(1)


def test_each_op_touches_each_image_with_probability_p():
    torch.manual_seed(0)
    x = torch.randn(400, 1, 4, 4)
    assert torch.equal(DiffAugment(["cutout"], p=0.0)(x), x)
    out = DiffAugment(["cutout"], p=0.25)(x)
    touched = (out != x).flatten(1).any(dim=1).float().mean().item()
    assert 0.18 < touched < 0.32
    assert (DiffAugment(["cutout"], p=1.0)(x) != x).flatten(1).any(dim=1).all()


def test_rotate90_turns_each_image_by_a_multiple_of_90_degrees():
    torch.manual_seed(0)
    x = torch.randn(64, 2, 5, 5)
    out = rotate90(x)
    turns = []
    for a, b in zip(x, out, strict=True):
        matches = [k for k in range(4) if torch.equal(a.rot90(k, dims=(1, 2)), b)]
        assert len(matches) == 1
        turns += matches
    assert set(turns) == {0, 1, 2, 3}


ADA = [*TINY, "train.steps=6", "train.ckpt_every=3", "train.log_every=1",
       "train.augment=[flip,rotate90,translation,color]", "train.augment_p=ada",
       "train.ada_interval=2", "train.ada_kimg=0.1", "device.threads=1"]


def test_ada_run_logs_p_and_resumes_bit_identically(tmp_path):
    """The checkpoint at step 3 falls inside an adjustment interval of 2 steps."""
    train(compose_config(ADA), tmp_path / "full")
    train(compose_config([*ADA, "train.steps=3"]), tmp_path / "resumed")
    train(compose_config([*ADA, f"resume={tmp_path / 'resumed'}"]), tmp_path / "resumed")
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "resumed")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["update"]["adaptive_augment"]["p"] == b["update"]["adaptive_augment"]["p"]
    records = [json.loads(line) for line in
               (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    p = [r["augment_p"] for r in records if "augment_p" in r]
    assert len(p) == 6 and p[0] == 0 and len(set(p)) > 1
    assert p[2] == p[1] and p[4] == p[3]  # it moves at steps 2, 4 and 6 only
    step = 16 * 2 / 100  # batch x interval / (ada_kimg x 1000)
    assert all(min(abs(v - k * step) for k in range(4)) < 1e-9 or v == 1 for v in p)


@pytest.mark.parametrize("overrides, needle", [
    (["train.augment=[flip]", "train.augment_p=2"],
     "train.augment_p must be a number in [0, 1] or ada, got 2"),
    (["train.augment=[flip]", "train.augment_p=often"], "train.augment_p must be a number"),
    (["train.augment_p=ada"], "train.augment_p=ada adapts the chance of the ops in"),
    (["train.augment=[flip]", "train.augment_p=ada", "train.ada_target=1.5"], "train.ada_target"),
    (["train.augment=[flip]", "train.augment_p=ada", "train.ada_interval=0"], "train.ada_interval"),
])
def test_bad_augment_values_name_the_key(overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        compose_config(overrides)


def test_a_fixed_p_is_accepted_as_a_number():
    cfg = compose_config(["train.augment=[flip]", "train.augment_p=0.3"])
    assert cfg.train.augment_p == "0.3"

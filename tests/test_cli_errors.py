"""Bad input: one line on stderr naming the problem, exit code 1, no traceback."""

import pytest

from tests.helpers import run_gan


def _assert_one_line_error(out, *needles):
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("args,needles", [
    (["train", "model=stylegan9"], ["unknown model 'stylegan9'", "dcgan", "mlp"]),
    (["train", "loss=wasserstein9"], ["unknown loss 'wasserstein9'", "gan"]),
    (["train", "dataset=imagenet"], ["unknown dataset 'imagenet'", "mnist5k"]),
    (["train", "-m", "loss=gan,nope"], ["unknown loss 'nope'"]),
    (["train", "train.steps=0"], ["train.steps must be > 0, got 0"]),
    (["train", "train.steps=-3"], ["train.steps must be > 0"]),
    (["train", "train.batch_size=0"], ["train.batch_size must be > 0"]),
    (["train", "dataset=cifar10", "dataset.root=nowhere", "dataset.download=false"],
     ["dataset 'cifar10' not found", "nowhere"]),
    (["sample", "ckpt=missing/last.pt"], ["checkpoint not found: missing/last.pt"]),
    (["sample"], ["ckpt is required"]),
    (["frobnicate"], ["unknown command 'frobnicate'"]),
])
def test_bad_input_is_one_clear_line(tmp_path, args, needles):
    _assert_one_line_error(run_gan(*args, cwd=tmp_path), *needles)


def test_debug_flag_shows_the_traceback(tmp_path):
    out = run_gan("sample", "ckpt=missing.pt", "--debug", cwd=tmp_path)
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_list_and_help(tmp_path):
    out = run_gan("list", cwd=tmp_path)
    assert out.returncode == 0 and "mnist5k" in out.stdout and "dcgan" in out.stdout
    assert "train" in run_gan("--help", cwd=tmp_path).stdout

"""Runs survive crashes and resume exactly; unsafe or broken files are refused clearly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from gancli.training.checkpoint import load_checkpoint, save_checkpoint
from gancli.training.loop import train
from tests.helpers import compose_config, run_gan

# A small MLP on the 2D ring: fast enough for hundreds of steps in a test.
RING = ["dataset=ring8", "dataset.size=4096", "model=mlp", "model.width_g=32",
        "model.width_d=32", "model.layers_g=2", "model.layers_d=2", "device=cpu",
        "train.batch_size=64", "train.log_every=10", "train.sample_every=1000"]


def _same_weights(a: dict, b: dict) -> bool:
    return all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_n_steps_then_resume_to_2n_is_bit_identical_to_2n(tmp_path):
    full = compose_config([*RING, "train.steps=60", "train.ckpt_every=30"])
    train(full, tmp_path / "full")

    half = compose_config([*RING, "train.steps=30", "train.ckpt_every=30"])
    train(half, tmp_path / "resumed")
    resumed = compose_config([*RING, "train.steps=60", "train.ckpt_every=30",
                              f"resume={tmp_path / 'resumed'}"])
    train(resumed, tmp_path / "resumed")

    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 60
    assert _same_weights(a, b)
    assert all(torch.equal(x, y) for x, y in zip(a["optimizers"]["g"]["state"][0].values(),
                                                 b["optimizers"]["g"]["state"][0].values(),
                                                 strict=True))
    # the metrics log carries on: each step once, in order
    steps = [int(line.split(",")[0].split(":")[1])
             for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(10, 61, 10))


def test_auto_resume_picks_up_last_checkpoint(tmp_path):
    train(compose_config([*RING, "train.steps=20", "train.ckpt_every=10"]), tmp_path)
    cfg = compose_config([*RING, "train.steps=30", "train.ckpt_every=10", "train.auto_resume=true"])
    train(cfg, tmp_path)
    records = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(records) == 3 and load_checkpoint(tmp_path)["step"] == 30


def _start_training(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gancli", "train", *args], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    args = [*RING, "train.steps=400", "train.ckpt_every=20", "hydra.run.dir=run"]
    proc = _start_training(tmp_path, *args)
    _wait_for(tmp_path / "run" / "checkpoints" / "step_0000040.pt", proc)
    proc.kill()  # SIGKILL: no handler runs, the write in flight (if any) is lost
    proc.wait()
    killed_at = load_checkpoint(tmp_path / "run")["step"]
    assert 20 <= killed_at < 400  # last.pt may still be one checkpoint behind step_40

    out = run_gan("train", *args, "resume=run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    train(compose_config([*RING, "train.steps=400", "train.ckpt_every=20"]), tmp_path / "ref")
    assert _same_weights(load_checkpoint(tmp_path / "run"), load_checkpoint(tmp_path / "ref"))


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_at_the_step_it_stopped(tmp_path):
    proc = _start_training(tmp_path, *RING, "train.steps=100000", "train.ckpt_every=50",
                           "hydra.run.dir=run")
    _wait_for(tmp_path / "run" / "checkpoints" / "step_0000050.pt", proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    message = [line for line in stderr.splitlines() if "stopped by SIGTERM" in line]
    assert len(message) == 1 and " -m gancli train resume=" in message[0]  # as it was run
    stopped_at = int(message[0].split("at step ")[1].split(";")[0])
    assert load_checkpoint(tmp_path / "run")["step"] == stopped_at >= 50


def test_atomic_save_keeps_the_previous_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint({"step": 2}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left behind


def test_keep_last_rotates_periodic_checkpoints(tmp_path):
    train(compose_config([*RING, "train.steps=50", "train.ckpt_every=10", "train.keep_last=2"]),
          tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["last.pt", "step_0000040.pt", "step_0000050.pt"]


class _CreatesFile:
    """Unpickling this runs Path.touch: the classic malicious-checkpoint payload."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_checkpoint_carrying_code_is_refused_and_never_runs(tmp_path, tiny_run):
    target = tmp_path / "pwned"
    state = torch.load(tiny_run / "checkpoints" / "last.pt", weights_only=True)
    state["payload"] = _CreatesFile(target)
    torch.save(state, tmp_path / "evil.pt")
    assert not target.exists()
    for command in (["sample", "out=x.png"], ["eval", "--fid"]):
        out = run_gan(*command, f"ckpt={tmp_path / 'evil.pt'}", cwd=tmp_path)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert "refusing to load" in out.stderr and "none of it was run" in out.stderr
        assert not target.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_truncated_or_corrupt_checkpoint_is_one_line(tmp_path, tiny_run, damage):
    data = (tiny_run / "checkpoints" / "last.pt").read_bytes()
    broken = data[: len(data) // 2] if damage == "truncate" else os.urandom(4096)
    (tmp_path / "bad.pt").write_bytes(broken)
    out = run_gan("sample", "ckpt=bad.pt", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: cannot read checkpoint bad.pt: truncated or corrupt" in out.stderr


def test_checkpoint_that_does_not_match_its_model_config(tmp_path, tiny_run):
    state = torch.load(tiny_run / "checkpoints" / "last.pt", weights_only=True)
    state["config"]["model"]["width_g"] = 16  # weights were trained with width 8
    torch.save(state, tmp_path / "mismatch.pt")
    out = run_gan("sample", "ckpt=mismatch.pt", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "does not match its model config 'dcgan'" in out.stderr


def test_a_checkpoint_with_keys_spelled_the_old_way_still_loads(tmp_path, tiny_run):
    from gancli.training.snapshot import load_trained

    state = torch.load(tiny_run / "checkpoints" / "last.pt", weights_only=True)
    model = state["config"]["model"]  # as gancli wrote it before the renames
    model["hidden_g"], model["hidden_d"] = model.pop("width_g"), model.pop("width_d")
    model["d"] = {"spectral_norm": model.pop("spectral_norm_d")}
    torch.save(state, tmp_path / "old.pt")
    family, loaded = load_trained(tmp_path / "old.pt", torch.device("cpu"), ema=False)
    assert loaded["config"]["model"]["width_g"] == 8 and "d" not in loaded["config"]["model"]
    for key, value in family.state_dict().items():
        assert torch.equal(value, state["model"][key]), key


def test_a_run_saved_before_a_key_existed_resumes_with_its_default(tmp_path):
    # an older gancli wrote configs without keys added since (here loss.ortho): they take
    # their defaults, which is what that run trained with; setting one is still a change
    args = [*RING, "train.ckpt_every=5"]
    train(compose_config([*args, "train.steps=5"]), tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    del state["config"]["loss"]["ortho"]
    save_checkpoint(state, last)
    out = run_gan("train", *args, "loss.ortho=0.1", "train.steps=10", "resume=run",
                  cwd=tmp_path)
    assert out.returncode == 1 and "loss.ortho=0.1 (was 0.0)" in out.stderr, out.stderr
    out = run_gan("train", *args, "train.steps=10", "resume=run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert load_checkpoint(tmp_path / "run")["step"] == 10


def test_resume_with_a_conflicting_config_is_refused(tmp_path):
    train(compose_config([*RING, "train.steps=10", "train.ckpt_every=10"]), tmp_path / "run")
    out = run_gan("train", *RING, "train.steps=20", "model.width_g=64", "resume=run",
                  cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "config conflicts" in out.stderr and "model.width_g=64 (was 32)" in out.stderr


def test_unwritable_output_directory(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    out = run_gan("train", *RING, "train.steps=2", "hydra.run.dir=afile/run", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "cannot create the run directory" in out.stderr


def test_unreadable_image_in_a_dataset_folder(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (40, 30)).save(images / "ok.png")
    (images / "broken.png").write_bytes(b"this is not a png")
    out = run_gan("train", "dataset=folder", f"dataset.root={images}", "dataset.resolution=32",
                  "train.steps=1", "train.batch_size=1", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "1 unreadable image file(s)" in out.stderr and "broken.png" in out.stderr


def test_odd_sized_images_are_resized_and_cropped(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    for i, size in enumerate([(40, 30), (17, 90), (64, 64), (5, 7)]):
        Image.new("L" if i % 2 else "RGBA", size, color=i * 40).save(images / f"{i}.png")
    cfg = compose_config(["dataset=folder", f"dataset.root={images}", "dataset.resolution=32",
                          "device=cpu", "train.steps=2", "train.batch_size=4",
                          "model.width_g=8", "model.width_d=8", "train.num_samples=4"])
    train(cfg, tmp_path / "run")
    assert load_checkpoint(tmp_path / "run")["step"] == 2


def test_nan_stops_naming_step_and_network(tmp_path):
    cfg = compose_config([*RING, "train.steps=20", "train.ckpt_every=5", "optimizer.lr=1e30"])
    with pytest.raises(Exception) as err:
        train(cfg, tmp_path)
    message = str(err.value)
    assert "non-finite" in message and "at step" in message
    assert "loss" in message or "weights" in message
    # the last checkpoint on disk holds finite weights
    if (tmp_path / "checkpoints" / "last.pt").exists():
        state = load_checkpoint(tmp_path)
        assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_nan_policy_skip_drops_updates_and_counts_them(tmp_path, monkeypatch):
    from gancli.losses import gan as gan_loss

    calls = {"n": 0}
    original = gan_loss.BCEGanLoss.g_loss

    def sometimes_nan(self, fake):  # every third generator loss is NaN
        calls["n"] += 1
        value = original(self, fake)
        return value * float("nan") if calls["n"] % 3 == 0 else value

    monkeypatch.setattr(gan_loss.BCEGanLoss, "g_loss", sometimes_nan)
    cfg = compose_config([*RING, "loss=gan", "train.steps=30", "train.ckpt_every=30",
                          "train.nan_policy=skip", "train.max_skipped=0.5"])
    train(cfg, tmp_path)
    state = load_checkpoint(tmp_path)
    assert state["skipped"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_first_signal_requests_a_stop_second_ctrl_c_exits_at_once():
    from gancli.training.signals import GracefulStop, Interrupted

    with pytest.raises(Interrupted), GracefulStop() as stop:  # the block never acted on it
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is not stop._handle  # handlers restored

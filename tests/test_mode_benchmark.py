"""benchmarks/mode_coverage.py end to end on a few training steps (wiring, not quality)."""

import subprocess
import sys

import pytest

from tests.helpers import REPO

SHORT = "train.steps=30 train.log_every=10 train.sample_every=30 train.ckpt_every=30"


@pytest.mark.slow
def test_benchmark_prints_mean_and_std_next_to_pacgan(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "mode_coverage.py"), "--datasets", "ring8",
         "--seeds", "2", "--samples", "300", "--extra", SHORT, "--keep", str(tmp_path),
         "--method", "plain gan", "model=mlp loss=gan model.width_g=16 model.width_d=16"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ring8")]
    assert [r.split("|")[2].strip() for r in rows] == [
        "ours", "PacGAN2 (PacGAN Table 1)", "plain gan"]
    ours = [cell.strip() for cell in rows[0].split("|")]
    assert "±" in ours[3] and "±" in ours[4]  # modes, high-quality %
    # reverse KL: mean ± std, or nan when after 30 steps some seed has no sample inside any
    # mode (the KL of an empty histogram is undefined)
    assert "±" in ours[5] or ours[5] == "nan"
    assert "| 7.9 | 95.6 |" in rows[1]
    for seed in (0, 1):
        assert (tmp_path / "ring8" / "ours" / f"seed{seed}" / "checkpoints" / "last.pt").is_file()

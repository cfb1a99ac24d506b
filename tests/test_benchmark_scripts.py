"""benchmarks/throughput.py, labels.py, fid_speed.py and baselines.py end to end on a few
steps or a tiny checkpoint, so the scripts the README quotes keep running. Random-quality
networks: these test the wiring and the report, not the figures."""

import re
import subprocess
import sys

import pytest
import torch
from PIL import Image

from gancli.training.loop import train
from tests.helpers import REPO, TINY, compose_config


def _script(*args, cwd):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                            timeout=900, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_throughput_prints_both_loops_and_their_ratio(tmp_path):
    out = _script(str(REPO / "benchmarks" / "throughput.py"), "--device", "cpu", "--cases",
                  "cpu", "--steps", "4", "--rounds", "1", cwd=tmp_path)
    row = next(line for line in out.splitlines() if line.startswith("| DCGAN-32 b64 gan |"))
    ref, ours, ratio = (float(cell) for cell in row.split("|")[2:5])
    assert ref > 0 and ours > 0
    # the table rounds img/s to integers and the ratio to 0.01: on a slow machine (tens of
    # img/s) the rounding alone moves ours/ref by more than 0.01
    low, high = (ours - 0.5) / (ref + 0.5), (ours + 0.5) / max(ref - 0.5, 1e-9)
    assert low - 0.005 <= ratio <= high + 0.005, (ref, ours, ratio)


@pytest.mark.slow
@pytest.mark.parametrize("model,extra,pattern", [
    ("cgan", [], r"samples classified as their requested class: (0|1)\.\d{3}"),
    ("infogan", [], r"I\(c1; predicted digit\) = -?\d+\.\d{3} nats .* chance level"),
    ("sgan", ["dataset.holdout=5", "dataset.labeled=2", "dataset.labeled_per_batch=4",
              "model.baseline=true", "model.baseline_steps=2"],
     r"held-out accuracy at step 4: SGAN D (0|1)\.\d{3}, supervised baseline (0|1)\.\d{3}"),
])
def test_labels_benchmark_measures_a_checkpoint(tmp_path, model, extra, pattern):
    run_dir = tmp_path / model
    train(compose_config([*TINY, "device.threads=1", f"model={model}", *extra]), run_dir)
    out = _script(str(REPO / "benchmarks" / "labels.py"), model, "--ckpt",
                  str(run_dir / "checkpoints" / "last.pt"), cwd=tmp_path)
    assert re.search(pattern, out), out


@pytest.mark.slow
def test_fid_speed_compares_with_pytorch_fid_on_random_weights(tmp_path):
    # no weights file here: both sides get the same random Inception weights
    out = _script(str(REPO / "benchmarks" / "fid_speed.py"), "--n", "10", "--rounds", "1",
                  "--batch-size", "5", "--workers", "0", "--device", "cpu", cwd=tmp_path)
    assert "random Inception weights" in out
    assert re.search(r"\| gancli / pytorch-fid \| \d+\.\d+x (faster|slower) \|", out), out
    distances = r"Fréchet distances (\S+) \(pytorch-fid\) and (\S+) \(gancli\)"
    reference, ours = re.search(distances, out).groups()
    assert float(ours) == pytest.approx(float(reference), rel=1e-3)


@pytest.mark.slow
def test_baselines_trains_for_a_cpu_budget_and_prints_the_table(tmp_path):
    out = _script(str(REPO / "benchmarks" / "baselines.py"), "ae", "--seconds", "1", "--n",
                  "100", "--runs", str(tmp_path / "runs"), "--grids", str(tmp_path), cwd=tmp_path)
    row = next(line for line in out.splitlines() if line.startswith("| ae |"))
    steps, cpu_s, fid, precision, recall, classes = (c.strip() for c in row.split("|")[2:8])
    assert int(steps) >= 1 and float(fid) > 0 and 0 <= float(precision) <= 1
    assert 0 <= float(recall) <= 1 and 1 <= int(classes) <= 10
    assert (tmp_path / "baseline_ae.png").is_file()


class _Recording:
    """A stand-in translator that returns its inputs (or blank images) and records them."""

    def __init__(self, blank: bool):
        self.blank, self.seen = blank, []

    def translate(self, x, direction):
        self.seen.append((len(x), direction))
        return -torch.ones_like(x) if self.blank else x


def test_translation_validation_reads_domain_a_training_items_only():
    # the selection rule's score: the held-out test digits must not enter it
    sys.path.insert(0, str(REPO / "benchmarks"))
    from translation import validation

    from gancli.data import build_dataset
    from gancli.metrics.classifier import load_mnist_classifier
    from gancli.metrics.translation import label_preservation

    data = build_dataset(compose_config(["dataset=digits2mnist"]).dataset)
    device = torch.device("cpu")
    same, blank = _Recording(blank=False), _Recording(blank=True)
    kept = validation(same, data, device)["val_label_a2b"]
    assert sum(n for n, _ in same.seen) == len(data.a) == 1797 - 10 * 30
    assert {direction for _, direction in same.seen} == {"a2b"}
    classifier = load_mnist_classifier(device)
    x, y = data.a.items(torch.arange(len(data.a)))
    assert kept == pytest.approx(label_preservation(classifier, x, y))
    # blank outputs are one class to the classifier: about a tenth of the labels
    assert validation(blank, data, device)["val_label_a2b"] < 0.2 < kept


@pytest.mark.slow
def test_karras_trains_for_a_cpu_budget_and_writes_the_stylegan2_grids(tmp_path):
    out = _script(str(REPO / "benchmarks" / "karras.py"), "stylegan2", "--seconds", "1",
                  "--n", "100", "--runs", str(tmp_path / "runs"), "--grids", str(tmp_path),
                  "--set", "model.width_g=8", "model.width_d=8", "model.z_dim=8",
                  "model.w_dim=8", cwd=tmp_path)
    row = next(line for line in out.splitlines() if line.startswith("| stylegan2 |"))
    steps, cpu_s, _, fid, precision, recall = (c.strip() for c in row.split("|")[2:8])
    assert int(steps) >= 1 and float(cpu_s) >= 1 and float(fid) > 0
    assert 0 <= float(precision) <= 1 and 0 <= float(recall) <= 1
    for name in ("karras_stylegan2", "karras_stylegan2_mixing", "karras_stylegan2_truncation"):
        assert (tmp_path / f"{name}.png").is_file()
    # the truncation row: 8 latents down, psi 1.0 .. 0.5 across, 32x32 images, 2-pixel gaps
    assert Image.open(tmp_path / "karras_stylegan2_truncation.png").size == (6 * 34 + 2,
                                                                             8 * 34 + 2)

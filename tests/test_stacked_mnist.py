"""Stacked MNIST: the dataset (three independent digits per image, label 0..999), the mode
count and KL on hand-made histograms, and benchmarks/mode_coverage.py's stacked_mnist wiring."""

import math
import subprocess
import sys

import pytest
import torch

from gancli.data import build_dataset
from gancli.data.embedded import load_mnist5k
from gancli.data.stacked_mnist import StackedMnistConfig, stack_digits, triple_labels
from gancli.errors import ConfigError, GanError
from gancli.metrics.classifier import load_mnist_classifier
from gancli.metrics.modes import classify_stacked, label_coverage
from gancli.registry import DATASETS
from tests.helpers import REPO, TINY, compose_config


def _data(size=256, data_seed=0):
    return build_dataset(StackedMnistConfig(size=size, data_seed=data_seed))


def test_registered_with_a_typed_config_and_a_yaml_file():
    assert "stacked_mnist" in DATASETS.names()
    cfg = compose_config(["dataset=stacked_mnist"]).dataset
    assert isinstance(cfg, StackedMnistConfig)
    assert (cfg.source, cfg.size) == ("mnist5k", 100_000)


def test_each_channel_is_a_digit_and_the_label_names_all_three():
    data = _data()
    digits, digit_labels = load_mnist5k()
    sampler = data.sampler(32, seed=0)
    x, y = next(data.batches(sampler, torch.device("cpu")))
    assert x.shape == (32, 3, 28, 28) and data.info.shape == (3, 28, 28)
    assert data.info.num_classes == 1000
    idx = data.sampler(32, seed=0)._permutation()[:32]  # the batch's items
    triples = data.triples(0)[idx]
    for c in range(3):
        expected = digits[triples[:, c], 0].float() / 127.5 - 1
        assert torch.equal(x[:, c], expected)
    assert torch.equal(y, 100 * digit_labels[triples[:, 0]] + 10 * digit_labels[triples[:, 1]]
                       + digit_labels[triples[:, 2]])


def test_channels_are_drawn_independently():
    triples = _data(size=20_000).triples(0)
    # no channel copies another, and every digit index is used about equally often
    assert (triples[:, 0] != triples[:, 1]).float().mean() > 0.99
    labels = load_mnist5k()[1][triples]
    joint = torch.bincount(labels[:, 0] * 10 + labels[:, 1], minlength=100).float()
    expected = len(triples) / 100
    chi2 = float(((joint - expected) ** 2 / expected).sum())
    assert chi2 < 160  # 99 degrees of freedom; p about 1e-4


def test_the_classifier_reads_each_channel_back():
    data = _data()
    x, y = data.items(torch.arange(200))
    predicted = classify_stacked(load_mnist_classifier(), x)
    assert (predicted == y).float().mean() > 0.85  # about 0.973 per digit, cubed


def test_stream_is_seeded_by_data_seed_and_epoch():
    a, b, other = _data(), _data(), _data(data_seed=1)
    assert torch.equal(a.triples(3), b.triples(3))
    assert not torch.equal(a.triples(0), a.triples(1))
    assert not torch.equal(a.triples(0), other.triples(0))


def test_a_resumed_stream_sees_the_same_batches():
    data, device = _data(size=64), torch.device("cpu")
    sampler = data.sampler(16, seed=5)
    stream = data.batches(sampler, device)
    batches = [next(stream) for _ in range(7)]  # crosses an epoch boundary (4 per epoch)
    resumed = data.sampler(16, seed=5)
    resumed.load_state_dict({"epoch": 1, "cursor": 1})
    again = data.batches(resumed, device)
    for x, y in batches[5:]:
        x2, y2 = next(again)
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_stack_digits_and_triple_labels_agree():
    digits = torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    images, labels = stack_digits(digits, torch.tensor([7, 3, 0, 9]),
                                  torch.tensor([[0, 1, 2], [3, 3, 0]]))
    assert images[0, :, 0, 0].tolist() == [0, 1, 2] and images[1, :, 1, 1].tolist() == [3, 3, 0]
    assert labels.tolist() == [730, 997]
    assert triple_labels(torch.tensor([[7, 3, 0], [9, 9, 7]])).tolist() == [730, 997]


def test_config_errors():
    with pytest.raises(ConfigError, match="dataset.source"):
        StackedMnistConfig(source="cifar10")
    with pytest.raises(ConfigError, match="dataset.size"):
        StackedMnistConfig(size=0)


def test_full_mnist_source_missing_is_one_line(tmp_path):
    cfg = StackedMnistConfig(source="mnist", root=str(tmp_path), download=False)
    with pytest.raises(GanError) as err:
        build_dataset(cfg)
    assert "dataset 'mnist' not found" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("labels,modes,kl", [
    (torch.arange(1000).repeat(3), 1000, 0.0),  # uniform
    (torch.full((50,), 7), 1, math.log(1000)),  # one mode
    (torch.arange(0, 1000, 2).repeat(2), 500, math.log(2)),  # every other mode, evenly
    (torch.tensor([0, 0, 0, 1]), 2, math.log(1000) + 0.75 * math.log(0.75) + 0.25 * math.log(0.25)),
])
def test_mode_count_and_kl_on_hand_made_histograms(labels, modes, kl):
    cov = label_coverage(labels, 1000)
    assert cov.modes == modes
    assert cov.reverse_kl == pytest.approx(kl, abs=1e-12)
    assert int(cov.histogram.sum()) == len(labels)


def test_label_coverage_rejects_labels_out_of_range():
    with pytest.raises(ValueError, match="0..999"):
        label_coverage(torch.tensor([1000]), 1000)


def test_recipes_compose():
    ours = compose_config(["+experiment=stacked_mnist"])
    baseline = compose_config(["+experiment=stacked_mnist_dcgan"])
    assert ours.dataset.name == baseline.dataset.name == "stacked_mnist"
    # the baseline is plain DCGAN: no packing, no regulariser, fewer steps
    assert baseline.model.pack == ours.model.pack == 1
    assert baseline.loss.r1 == 0 < ours.loss.r1 and baseline.loss.name == ours.loss.name == "gan"
    assert ours.train.ema == baseline.train.ema and ours.optimizer.schedule.value == "constant"
    assert baseline.train.steps < ours.train.steps and ours.device.threads == "1"


@pytest.mark.slow  # a subprocess; 17.5 s wall on the shared 2-core machine
def test_benchmark_prints_stacked_mnist_table(tmp_path):
    extra = " ".join([*TINY, "train.batch_size=8"])
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "mode_coverage.py"), "stacked_mnist",
         "--seeds", "2", "--samples", "100", "--extra", extra, "--keep", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    names = [row.split("|")[1].strip() for row in rows]
    assert names[1:3] == ["ours", "real Stacked MNIST (mnist5k digits)"]
    assert "PacDCGAN2 (PacGAN Table 3)" in names
    ours = [cell.strip() for cell in rows[1].split("|")]
    assert "±" in ours[2] and "±" in ours[3]  # modes and KL, mean ± sd over 2 seeds
    assert "100 samples per run" in result.stdout and "held-out accuracy 0.973" in result.stdout
    shares = [line for line in result.stdout.splitlines() if line.startswith("| ours |")][1]
    assert sum(float(v) for v in shares.split("|")[2:-1]) == pytest.approx(100, abs=0.1)
    for seed in (0, 1):
        assert (tmp_path / "stacked_mnist" / "ours" / f"seed{seed}" / "checkpoints"
                / "last.pt").is_file()


def test_labels_are_those_of_the_first_epochs_items():
    data = _data(size=50)
    assert torch.equal(data.labels(), data.items(torch.arange(50))[1])


def test_eval_reads_real_stacked_items_as_uint8_triples_of_digits():
    """gan eval's real side (DatasetSource) on Stacked MNIST: n uint8 items in batches, each
    channel one of the source digits, the same items for the same seed."""
    from gancli.metrics.sources import DatasetSource

    cfg = StackedMnistConfig(size=256)
    batches = list(DatasetSource(cfg, n=50, seed=3).batches(20))
    assert [b.shape for b in batches] == [(20, 3, 28, 28), (20, 3, 28, 28), (10, 3, 28, 28)]
    assert all(b.dtype == torch.uint8 for b in batches)
    items = torch.cat(batches)
    again = torch.cat(list(DatasetSource(cfg, n=50, seed=3).batches(50)))
    assert torch.equal(items, again)
    assert not torch.equal(items, torch.cat(list(DatasetSource(cfg, n=50, seed=4).batches(50))))
    digits = load_mnist5k()[0][:, 0].flatten(1)
    for c in range(3):  # every channel is a source digit, exactly
        distance = torch.cdist(items[:, c].flatten(1).float(), digits.float())
        assert (distance.min(dim=1).values == 0).all()


def _mode_coverage_module():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import mode_coverage
    finally:
        sys.path.pop(0)
    return mode_coverage


def test_digit_shares_pool_the_three_channels():
    shares = _mode_coverage_module().digit_shares(torch.tensor([123, 456, 789, 111]))
    # digits: 1,2,3 / 4,5,6 / 7,8,9 / 1,1,1 -> 1 is 4 of 12
    assert shares[1] == pytest.approx(100 * 4 / 12) and shares[0] == 0
    assert sum(shares) == pytest.approx(100)


def test_real_items_are_read_with_the_classifier_file_given(tmp_path):
    """--classifier replaces the reader: a doctored file that always says 3 finds one mode."""
    from gancli.metrics.classifier import load_classifier_file

    mode_coverage = _mode_coverage_module()
    assert mode_coverage.real_stacked_scores(300)[0] > 200  # the committed reader
    state = load_classifier_file()
    state["state_dict"]["head.weight"] = torch.zeros_like(state["state_dict"]["head.weight"])
    state["state_dict"]["head.bias"] = torch.nn.functional.one_hot(torch.tensor(3), 10).float()
    torch.save(state, tmp_path / "threes.pt")
    modes, kl = mode_coverage.real_stacked_scores(300, classifier=tmp_path / "threes.pt")
    assert modes == 1 and kl == pytest.approx(math.log(1000), rel=1e-4)

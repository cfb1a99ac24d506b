import pytest
import torch
from PIL import Image

from gancli.data import build_dataset
from gancli.data.base import EpochSampler
from gancli.data.toy2d import grid_means, ring_means
from gancli.errors import GanError
from tests.helpers import compose_config


def _dataset(*overrides):
    return build_dataset(compose_config(list(overrides)).dataset)


@pytest.mark.parametrize("name,count,shape", [
    ("mnist5k", 5000, (1, 28, 28)),
    ("digits", 1797, (1, 8, 8)),
])
def test_embedded_image_datasets(name, count, shape):
    data = _dataset(f"dataset={name}")
    assert len(data) == count and data.info.shape == shape and data.info.num_classes == 10
    x = data.real_samples(count)
    assert x.shape == (count, *shape)
    assert x.min() >= -1 and x.max() <= 1
    assert x.min() == -1 and x.max() == 1  # the full pixel range is used
    assert torch.bincount(data.y, minlength=10).min() > 0


def test_mnist5k_has_500_per_class_and_resizes():
    data = _dataset("dataset=mnist5k", "dataset.resolution=32")
    assert data.info.shape == (1, 32, 32)
    assert torch.bincount(data.y).tolist() == [500] * 10


def test_ring8_matches_pacgan_definition():
    data = _dataset("dataset=ring8", "dataset.size=8000")
    assert len(data) == 8000 and data.info.shape == (2,) and data.info.kind == "points"
    means = ring_means(8, 1.0).float()
    assert torch.allclose(means.norm(dim=1), torch.ones(8))
    offsets = data.x - means[data.y]
    assert offsets.std().item() == pytest.approx(0.01, rel=0.05)


def test_grid25_matches_pacgan_definition():
    data = _dataset("dataset=grid25", "dataset.size=10000")
    assert sorted(set(grid_means(5, 2.0)[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    assert data.info.num_classes == 25
    offsets = data.x - data.means[data.y]
    assert offsets.std().item() == pytest.approx(0.05, rel=0.05)
    assert torch.bincount(data.y, minlength=25).min() > 300  # all modes drawn


def test_torchvision_dataset_missing_offline_is_one_clear_line(tmp_path):
    with pytest.raises(GanError) as err:
        _dataset("dataset=mnist", f"dataset.root={tmp_path}", "dataset.download=false")
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path) in message and "dataset.download=true" in message


def test_folder_dataset_reads_images_and_class_subfolders(tmp_path):
    gen = torch.Generator().manual_seed(0)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            pixels = torch.randint(0, 256, (20, 24, 3), generator=gen, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(tmp_path / cls / f"{i}.png")
    data = _dataset("dataset=folder", f"dataset.root={tmp_path}", "dataset.resolution=16")
    assert len(data) == 6 and data.info.shape == (3, 16, 16) and data.info.num_classes == 2
    x, y = next(data.batches(data.sampler(4, seed=0), torch.device("cpu")))
    assert x.shape == (4, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert set(y.tolist()) <= {0, 1}


def test_folder_missing_is_a_clear_error(tmp_path):
    with pytest.raises(GanError, match="does not exist"):
        _dataset("dataset=folder", f"dataset.root={tmp_path / 'nope'}")


def test_sampler_covers_each_epoch_and_resumes_exactly():
    sampler = EpochSampler(10, 3, seed=7)
    it = iter(sampler)
    first_epoch = torch.cat([next(it) for _ in range(3)])
    assert len(set(first_epoch.tolist())) == 9  # no repeats within an epoch
    expected = [next(it) for _ in range(4)]
    resumed = EpochSampler(10, 3, seed=7)
    resumed.load_state_dict({"epoch": 1, "cursor": 0})
    it2 = iter(resumed)
    assert all(torch.equal(a, next(it2)) for a in expected)


def test_sampler_ranks_split_the_global_batch():
    whole = next(iter(EpochSampler(12, 4, seed=1)))
    halves = [next(iter(EpochSampler(12, 4, seed=1, rank=r, world_size=2))) for r in (0, 1)]
    assert torch.equal(torch.cat(halves), whole)


def test_batch_larger_than_dataset_is_refused():
    with pytest.raises(GanError, match="larger than the dataset"):
        EpochSampler(5, 8, seed=0)

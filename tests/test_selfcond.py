"""The self-conditioned GAN (model=selfcond): its k-means, the cluster shares its samples
follow, real items judged by cluster (never by the dataset's label), and a resumed run that
reclusters where the uninterrupted one did. Networks are tiny with random weights: these tests
check wiring, not quality (benchmarks/mode_coverage.py measures that)."""

import pytest
import torch

from gancli.data import build_dataset
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.losses import build_loss
from gancli.models import build_model
from gancli.models.kmeans import kmeans, nearest
from gancli.sampling import generate_batches, load_gan
from gancli.training.step import StepOptions
from tests.helpers import adversarial_step, compose_config, straight_and_resumed

DIGITS = DataInfo("digits", "image", (1, 32, 32), 10)
SMALL = ["model=selfcond", "model.arch=dcgan", "model.width_g=4", "model.width_d=4",
         "model.clusters=4", "model.cluster_items=64"]
RUN = ["device=cpu", "device.threads=1", "dataset=digits", "dataset.resolution=32",
       "train.batch_size=8", "train.log_every=1", "train.sample_every=100",
       "train.ckpt_every=3", "train.num_samples=4", "model.recluster_every=2", *SMALL]


def _blobs(gen):
    centres = torch.tensor([[-10.0, 0.0], [0.0, 10.0], [10.0, 0.0]])
    truth = torch.arange(3).repeat_interleave(50)
    x = centres[truth] + 0.5 * torch.randn(150, 2, generator=gen)
    order = torch.randperm(150, generator=gen)
    return x[order], truth[order]


def _same_partition(a, b):
    return all(len(set(b[a == c].tolist())) == 1 for c in a.unique()) and \
        len(a.unique()) == len(b.unique())


def test_kmeans_separates_three_blobs():
    x, truth = _blobs(torch.Generator().manual_seed(0))
    centroids, labels = kmeans(x, 3, 20, torch.Generator().manual_seed(1))
    assert _same_partition(labels, truth)
    assert torch.equal(nearest(x, centroids), labels)


def test_a_warm_start_keeps_each_cluster_its_number():
    x, _ = _blobs(torch.Generator().manual_seed(0))
    _, labels = kmeans(x, 3, 20, torch.Generator().manual_seed(1))
    moved = x * 1.5 + torch.tensor([3.0, -2.0])  # new features of the same items
    for seed in range(3):  # the seed only matters to k-means++, which a warm start skips
        _, again = kmeans(moved, 3, 20, torch.Generator().manual_seed(seed), init_labels=labels)
        assert torch.equal(again, labels)


def test_an_empty_cluster_is_reseeded():
    x, truth = _blobs(torch.Generator().manual_seed(0))
    everyone_in_zero = torch.zeros(150, dtype=torch.int64)  # clusters 1 and 2 start empty
    _, labels = kmeans(x, 3, 20, torch.Generator().manual_seed(1), init_labels=everyone_in_zero)
    assert _same_partition(labels, truth)


def test_generated_samples_draw_clusters_with_the_data_shares():
    torch.manual_seed(0)
    gan = build_model(compose_config(SMALL).model, DIGITS)
    gan.shares.copy_(torch.tensor([0.5, 0.3, 0.2, 0.0]))
    y = gan.sample_labels(40_000, torch.device("cpu"), torch.Generator().manual_seed(0))
    freq = torch.bincount(y, minlength=4) / len(y)
    assert torch.allclose(freq, gan.shares, atol=0.01)
    assert freq[3] == 0


def _bound_model(extra=()):
    torch.manual_seed(0)
    cfg = compose_config([*RUN, *extra])
    gan = build_model(cfg.model, DIGITS)
    gan.bind(build_dataset(cfg.dataset), torch.device("cpu"))
    return gan


def test_clustering_reads_d_now_and_labels_real_items_by_nearest_centroid():
    gan = _bound_model()
    with torch.no_grad():
        for p in gan.D.parameters():
            p.mul_(1.5)  # D moved on since it was built (and copied into the trunk)
    assert gan.recluster_due(1)
    gan.recluster(1)
    assert int(gan.clustered_at) == 1 and not gan.recluster_due(2) and gan.recluster_due(3)
    assert all(torch.equal(a, b) for a, b in zip(gan.trunk.state_dict().values(),
                                                  gan.D.backbone.state_dict().values(),
                                                  strict=True))
    assert gan.shares.sum().item() == pytest.approx(1.0) and (gan.shares > 0).all()
    x = gan.pool[:20]
    gan.trunk.eval()
    with torch.no_grad():
        expected = nearest(gan.trunk.features(x), gan.centroids)
    assert torch.equal(gan.assign(x), expected)


def test_the_dataset_labels_play_no_part():
    """Two runs of three steps, one fed the true labels, one fed nonsense: the same weights."""
    data = build_dataset(compose_config(RUN).dataset)
    x, y = data.items(torch.arange(24))
    results = []
    for labels in (y, (y * 7 + 3) % 10):
        gan = _bound_model()
        loss = build_loss(compose_config(RUN).loss)
        opt_d = torch.optim.Adam(gan.D.parameters(), 1e-3)
        opt_g = torch.optim.Adam(gan.G.parameters(), 1e-3)
        step = adversarial_step(gan, loss, opt_g, opt_d, StepOptions(batch_size=8))
        torch.manual_seed(1)
        batches = iter(zip(x.split(8), labels.split(8), strict=True))
        for i in range(1, 4):
            step(batches, i)
        results.append({k: v.clone() for k, v in gan.state_dict().items()})
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_resumed_run_reclusters_as_the_uninterrupted_one(tmp_path):
    a, b = straight_and_resumed(RUN, tmp_path, steps=6, stop=3)
    assert int(a["model"]["clustered_at"]) == 5  # steps 1, 3 and 5 clustered
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])

    gan, _ = load_gan(tmp_path / "full", torch.device("cpu"))  # and it samples unconditionally
    (x, clusters), = generate_batches(gan, 8, torch.device("cpu"), seed=0, batch_size=8)
    assert x.shape == (8, 1, 32, 32) and ((clusters >= 0) & (clusters < 4)).all()


@pytest.mark.parametrize("override,key", [
    ("model.clusters=1", "model.clusters"),
    ("model.cluster_items=3", "model.cluster_items"),
    ("model.recluster_every=-1", "model.recluster_every"),
    ("model.pack=2", "model.pack"),
])
def test_bad_settings_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        build_model(compose_config([*SMALL, override]).model, DIGITS)


def test_a_dataset_smaller_than_the_clusters_is_refused():
    with pytest.raises(ConfigError, match="model.clusters"):
        _bound_model(["model.clusters=2000", "model.cluster_items=5000"])

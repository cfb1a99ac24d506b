"""gan viz / plot / report / nn, histograms and the HParams entry, on one tiny run."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gancli.errors import ConfigError
from tests.helpers import TINY, compose_config, run_gan

VIZ_RUN = [*TINY, "dataset.holdout=2", "train.histogram_every=2", "train.eval_every=2",
           "train.eval_metric=mnist_fid", "train.eval_n=40", "train.sample_every=1"]


@pytest.fixture(scope="module")
def viz_run(tmp_path_factory):
    """A tiny DCGAN run with held-out digits, histograms at steps 2 and 4, evaluations and
    a sample grid at every step."""
    from gancli.training.loop import train

    run_dir = tmp_path_factory.mktemp("viz_run")
    train(compose_config([*VIZ_RUN, "device.threads=1"]), run_dir)
    return run_dir


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_histograms_are_logged_at_the_chosen_steps_only(viz_run):
    tags = _events(viz_run).Tags()
    acc = _events(viz_run)
    hist = tags["histograms"]
    assert any(t.startswith("grads/G/") for t in hist) and any(t.startswith("grads/D/")
                                                               for t in hist)
    assert any(t.startswith("weights/D/") for t in hist)
    for tag in (t for t in hist if t.startswith(("grads/", "weights/"))):
        assert [e.step for e in acc.Histograms(tag)] == [2, 4]
    norms = [t for t in tags["scalars"] if t.startswith("grad_norm_layer/G/")]
    assert norms and [e.step for e in acc.Scalars(norms[0])] == [2, 4]


def test_histograms_are_off_by_default():
    assert compose_config([]).train.histogram_every == 0
    with pytest.raises(ConfigError, match="histogram_every must be >= 0"):
        compose_config(["train.histogram_every=-1"])


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_viz_map_embeds_real_and_generated_with_legends_and_numbers(viz_run, tmp_path):
    from gancli.viz.maps import MapArgs, compute_map, map_figure, run_map

    args = MapArgs(ckpt=str(viz_run), method="pca", n=30, out=str(tmp_path / "map.png"),
                   device="cpu")
    picture, numbers = run_map(args)
    assert picture.stat().st_size > 0 and numbers == tmp_path / "map.npz"
    saved = np.load(numbers)
    assert saved["xy"].shape == (60, 2) and saved["generated"].sum() == 30
    assert saved["labels"].shape == (60,) and int(saved["step"]) == 4
    fig = map_figure(compute_map(args))
    assert _legend(fig.axes[0]) == ["real (30)", "generated (30)"]
    assert "real" in _legend(fig.axes[1]) and any(t.startswith("class ")
                                                 for t in _legend(fig.axes[1]))
    assert "step 4" in fig._suptitle.get_text() and viz_run.name in fig._suptitle.get_text()


def test_viz_tsne_of_discriminator_features(viz_run, tmp_path):
    from gancli.viz.maps import MapArgs, run_map

    _, numbers = run_map(MapArgs(ckpt=str(viz_run), method="tsne", features="d", n=20,
                                 out=str(tmp_path / "d.png"), device="cpu"))
    saved = np.load(numbers)
    assert saved["xy"].shape == (40, 2) and "last layer" in str(saved["features"])


def test_feature_choices_a_model_lacks_fail_in_one_line():
    from gancli.data.base import DataInfo
    from gancli.viz.common import FeatureFn, Features

    info = DataInfo("mnist5k", "image", (1, 28, 28), 10)
    no_d = SimpleNamespace(info=info, D=None, pack=1)
    with pytest.raises(ConfigError, match="features=d needs a model with a discriminator"):
        FeatureFn(Features.d, no_d, torch.device("cpu"))
    with pytest.raises(ConfigError, match="features=latent needs a model with an encoder"):
        FeatureFn(Features.latent, no_d, torch.device("cpu"))


def test_latent_features_use_a_models_encode_method(tmp_path):
    from gancli.data.base import DataInfo
    from gancli.viz.common import FeatureFn, Features

    class WithEncoder(SimpleNamespace):
        def encode(self, x):
            return x.flatten(1)[:, :3], None  # (mu, logvar): the mean is mapped

    model = WithEncoder(info=DataInfo("mnist5k", "image", (1, 4, 4), 10))
    feats = FeatureFn(Features.latent, model, torch.device("cpu"))(torch.zeros(5, 1, 4, 4))
    assert feats.shape == (5, 3)


def test_viz_cli_rejects_latent_for_a_gan_in_one_line(viz_run, tmp_path):
    done = run_gan("viz", f"ckpt={viz_run}", "features=latent", "n=20", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "features=latent needs a model with an encoder" in done.stderr


def test_plot_overlays_runs_and_writes_the_timelapse(viz_run, tmp_path):
    from PIL import Image

    from gancli.viz.curves import PlotArgs, curves_figure, run_plot

    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "d_loss": 1.0, "g_loss": 2.0, "mnist_fid": 9.0 - s})
                + "\n" for s in (2, 4)))
    written = run_plot([viz_run, other], PlotArgs(out=str(tmp_path / "curves.png")))
    assert written[0].stat().st_size > 0 and written[1] == viz_run / "samples.gif"
    with Image.open(written[1]) as gif:
        assert gif.n_frames == 4  # sample_every=1 over 4 steps
    fig = curves_figure([viz_run, other])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["losses", "D(x) and D(G(z)) (mean raw scores)",
                          "gradient norms (before clipping)"] and "mnist_fid" in titles
    losses = _legend(fig.axes[0])
    assert f"{viz_run.name}: d_loss" in losses and "other: g_loss" in losses
    assert _legend(fig.axes[titles.index("mnist_fid")]) == [viz_run.name, "other"]


def test_plot_of_a_run_with_no_metrics_is_one_line(tmp_path):
    (tmp_path / "empty_run").mkdir()
    done = run_gan("plot", "empty_run", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: empty_run has no metrics yet (empty_run/metrics.jsonl "
                                   "is missing or empty); a run logs every train.log_every steps")


def test_nn_shows_neighbours_and_compares_with_held_out_digits(viz_run, tmp_path):
    from gancli.viz.neighbours import NeighbourArgs, nearest, run_neighbours

    picture, numbers, result = run_neighbours(NeighbourArgs(
        ckpt=str(viz_run), n=3, k=2, features="pixels", out=str(tmp_path / "nn.png"),
        device="cpu"))
    assert picture.stat().st_size > 0 and json.loads(numbers.read_text()) == result
    assert result["train_items"] == 4980 and result["held_out_to_train"]["n"] == 20
    assert result["generated_to_train"]["n"] == 20  # as many as there are held-out items
    # the exact neighbours: a training item's nearest item is itself, at distance 0
    bank = torch.randn(50, 7)
    d, i = nearest(bank[:5], bank, 2)
    assert torch.equal(i[:, 0], torch.arange(5)) and torch.all(d[:, 0] < 1e-4)
    assert torch.all(d[:, 1] >= d[:, 0])


def test_report_is_one_self_contained_html_file(viz_run, tmp_path):
    import re

    from gancli.viz.report import ReportArgs, run_report

    out = run_report(viz_run, ReportArgs(out=str(tmp_path / "r.html"), grids=2, tsne=True,
                                         tsne_n=20, device="cpu"))
    text = out.read_text()
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == 1 + 1 + 2 + 1  # last grid, curves, 2 grids over training, t-SNE
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http" not in text.replace("http-equiv", "")  # nothing fetched from anywhere
    for heading in ("Command", "Curves", "Samples over training", "Metrics", "t-SNE map",
                    "Resolved config"):
        assert f"<h2>{heading}" in text
    assert "mnist_fid" in text and "holdout: 2" in text  # metrics and the config


def test_report_of_a_run_with_no_metrics_is_one_line(tmp_path):
    (tmp_path / "fresh").mkdir()
    done = run_gan("report", "fresh", "out=r.html", cwd=tmp_path)
    assert done.returncode == 1 and "fresh has no metrics yet" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_report_renders_in_headless_chromium(viz_run, tmp_path):
    import shutil

    from PIL import Image

    from gancli.viz.report import ReportArgs, browser_screenshot, run_report

    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    page = run_report(viz_run, ReportArgs(out=str(tmp_path / "r.html")))
    shot = browser_screenshot(page, tmp_path / "shot.png", 800, 1000)
    with Image.open(shot) as image:
        assert image.size == (800, 1000)
        # something was drawn: not one flat colour
        assert len(image.convert("L").getcolors(maxcolors=1 << 16) or []) > 10


def test_viz_of_2d_points_shows_the_points_themselves(tmp_path):
    from gancli.training.loop import train
    from gancli.viz.maps import MapArgs, run_map

    run_dir = tmp_path / "ring"
    train(compose_config(["device=cpu", "device.threads=1", "model=mlp", "dataset=ring8",
                          "train.steps=2", "train.batch_size=16", "train.log_every=1",
                          "train.sample_every=2", "train.ckpt_every=2",
                          "train.num_samples=16"]), run_dir)
    _, numbers = run_map(MapArgs(ckpt=str(run_dir), method="tsne", n=25,
                                 out=str(tmp_path / "ring.png"), device="cpu"))
    saved = np.load(numbers)
    assert str(saved["method"]) == "identity" and saved["xy"].shape == (50, 2)
    # the real half are points of the ring: radius 1, std 0.01
    radius = np.linalg.norm(saved["xy"][~saved["generated"]], axis=1)
    assert np.all(np.abs(radius - 1) < 0.1)


def test_nn_without_held_out_items_shows_the_generated_side_only(tiny_run, tmp_path):
    done = run_gan("nn", f"ckpt={tiny_run}", "n=2", "k=2", "m=10", "features=pixels",
                   "device=cpu", "out=nn.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no held-out real items in this run" in done.stdout
    result = json.loads((tmp_path / "nn.json").read_text())
    assert result["generated_to_train"]["n"] == 10 and "held_out_to_train" not in result


@pytest.mark.slow
def test_viz_in_inception_features_with_random_weights(viz_run, tmp_path):
    """Wiring only: random weights in the FID Inception's file format."""
    from gancli.viz.maps import MapArgs, run_map
    from tests.inception_weights import write_random_fid_weights

    weights = write_random_fid_weights(tmp_path / "inception.pth")
    _, numbers = run_map(MapArgs(ckpt=str(viz_run), method="pca", features="inception", n=10,
                                 out=str(tmp_path / "m.png"), device="cpu",
                                 inception_weights=str(weights)))
    saved = np.load(numbers)
    assert saved["xy"].shape == (20, 2) and "Inception" in str(saved["features"])


def test_nn_flags_samples_that_copy_training_digits(viz_run, tmp_path):
    """The check's own calibration: training digits passed off as samples sit far closer to
    the training set than held-out digits do."""
    from gancli.config import from_container
    from gancli.data import build_dataset
    from gancli.training.checkpoint import load_checkpoint
    from gancli.viz.neighbours import NeighbourArgs, run_neighbours

    cfg = from_container(load_checkpoint(viz_run / "checkpoints" / "last.pt")["config"])
    train = build_dataset(cfg.dataset).items(torch.arange(20))[0]
    copies = (train + 0.05 * torch.randn_like(train)).clamp(-1, 1)
    np.savez(tmp_path / "copies.npz", samples=copies.numpy())
    _, _, result = run_neighbours(NeighbourArgs(
        ckpt=str(viz_run), n=2, k=2, features="pixels", fake=str(tmp_path / "copies.npz"),
        out=str(tmp_path / "nn.png"), device="cpu"))
    assert result["samples"].endswith("copies.npz") and result["generated_to_train"]["n"] == 20
    assert result["median_ratio_generated_over_held_out"] < 0.5

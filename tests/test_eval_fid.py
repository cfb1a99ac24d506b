"""`gan eval --fid` on two folders equals pytorch-fid's FID on the same folders and weights.

The Inception weights here are RANDOM (tests/inception_weights.py): this checks that our
network, image reading, resizing, normalisation and statistics reproduce pytorch-fid's numbers
for the same weights file, not that the FID value itself means anything.

pytorch-fid's own functions compute the reference: `get_activations` on the folders, then
`calculate_frechet_distance`. With a handful of images the 2048-d statistics have rank < 16, and
scipy's sqrtm of their 2048x2048 product takes a minute on 2 cores, so the statistics are given
to it in an orthonormal basis of the subspace the activations span. The Fréchet distance is
invariant under rotations and nothing varies outside that subspace, so this is the same number
(a 2048-d comparison of the distance alone is in test_metric_functions.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gancli.cli import main
from gancli.metrics.kid import kernel_inception_distance
from gancli.metrics.precision_recall import precision_recall
from tests.inception_weights import write_random_fid_weights

N_IMAGES = 8  # per folder: Inception at 299x299 costs about a second per image on 2 cores


def write_folder(folder, seed: int, brightness: float, size: int, mode: str):
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(N_IMAGES):
        base = rng.uniform(0, 255 * brightness, (1, 1, 3))
        pixels = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        (image.convert("L") if mode == "L" else image).save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.slow
def test_gan_eval_fid_equals_pytorch_fid_on_the_same_folders_and_weights(tmp_path, monkeypatch):
    import pytorch_fid.inception
    from pytorch_fid.fid_score import (
        IMAGE_EXTENSIONS,
        calculate_frechet_distance,
        get_activations,
    )

    weights = write_random_fid_weights(tmp_path / "random_fid_weights.pth")
    # pytorch-fid downloads its weights by URL: hand it the same file instead
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url",
                        lambda *a, **k: torch.load(weights, weights_only=True))
    real = write_folder(tmp_path / "real", 0, 1.0, 32, "RGB")
    fake = write_folder(tmp_path / "fake", 1, 0.6, 28, "L")  # grey, another size

    main(["eval", "--fid", "--kid", "--pr", f"real={real}", f"fake={fake}",
          f"inception_weights={weights}", "device=cpu", "num_workers=0",
          f"cache_dir={tmp_path / 'cache'}", f"out={tmp_path / 'ours.json'}"])
    ours = json.loads((tmp_path / "ours.json").read_text())

    model = pytorch_fid.inception.InceptionV3([3]).eval()

    def activations(folder):
        files = sorted(f for ext in IMAGE_EXTENSIONS for f in folder.glob(f"*.{ext}"))
        return get_activations(files, model, batch_size=N_IMAGES, dims=2048, num_workers=0)

    act_real, act_fake = activations(real), activations(fake)
    span = np.concatenate([act_real - act_real.mean(0), act_fake - act_fake.mean(0),
                           (act_real.mean(0) - act_fake.mean(0))[None]])
    basis = np.linalg.svd(span, full_matrices=False)[2].T  # (2048, k), orthonormal columns
    real_k, fake_k = act_real @ basis, act_fake @ basis
    theirs = calculate_frechet_distance(real_k.mean(0), np.cov(real_k, rowvar=False),
                                        fake_k.mean(0), np.cov(fake_k, rowvar=False))
    assert ours["metrics"]["fid"] == pytest.approx(theirs, rel=1e-3)
    assert ours["n_real"] == ours["n_fake"] == N_IMAGES
    assert ours["protocol"]["features"] == "pool3, 2048-d"
    # KID and precision/recall from pytorch-fid's activations agree too: same features
    kid = kernel_inception_distance(act_real, act_fake, 100, 1000, seed=0)[0]
    assert ours["metrics"]["kid"] == pytest.approx(kid, rel=1e-3)
    pr = precision_recall(act_real, act_fake, k=3)
    assert (ours["metrics"]["precision"], ours["metrics"]["recall"]) == pr

"""`gan sample out=dir/` writes one PNG per sample, streamed batch by batch."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from gancli.images import to_uint8
from gancli.sampling import SampleArgs, generate, generate_batches, load_gan, run_sample


def test_png_files_hold_exactly_the_generated_pixels_across_batches(tiny_run, tmp_path):
    run_sample(SampleArgs(ckpt=str(tiny_run), n=45, out=f"{tmp_path / 'pngs'}/", seed=2,
                          batch_size=16, device="cpu"))
    files = sorted((tmp_path / "pngs").glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(45)]
    gan, _ = load_gan(tiny_run, torch.device("cpu"))
    samples, _ = generate(gan, 45, torch.device("cpu"), seed=2, batch_size=16)
    written = np.stack([np.asarray(Image.open(f)) for f in files])
    assert written.shape == (45, 28, 28)  # grey PNGs at the model's resolution
    assert np.array_equal(written, to_uint8(samples)[:, 0].numpy())


def test_generate_batches_is_generate_one_batch_at_a_time(tiny_run):
    gan, _ = load_gan(tiny_run, torch.device("cpu"))
    whole, _ = generate(gan, 37, torch.device("cpu"), seed=1, batch_size=10)
    parts = [x for x, _ in generate_batches(gan, 37, torch.device("cpu"), 1, 10)]
    assert [len(p) for p in parts] == [10, 10, 10, 7]
    assert torch.equal(torch.cat(parts), whole)

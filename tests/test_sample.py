"""`gan sample` rebuilds the generator from a checkpoint alone."""

import numpy as np
import torch
from PIL import Image

from gancli.sampling import SampleArgs, generate, load_gan, run_sample, slerp
from tests.helpers import run_gan


def test_png_grid_from_the_command_line(tiny_run, tmp_path):
    ckpt = tiny_run / "checkpoints" / "last.pt"
    out = run_gan("sample", f"ckpt={ckpt}", "n=16", "out=grid.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    image = Image.open(tmp_path / "grid.png")
    # 4x4 grid of 28x28 digits with 2-pixel padding
    assert image.size == (4 * 30 + 2, 4 * 30 + 2)


def test_npz_holds_samples_in_data_space(tiny_run, tmp_path):
    run_sample(SampleArgs(ckpt=str(tiny_run), n=37, out=str(tmp_path / "s.npz"),
                          batch_size=16, device="cpu"))
    samples = np.load(tmp_path / "s.npz")["samples"]
    assert samples.shape == (37, 1, 28, 28) and samples.dtype == np.float32
    assert samples.min() >= -1 and samples.max() <= 1


def test_samples_are_seeded_and_batch_size_does_not_matter(tiny_run):
    gan, _ = load_gan(tiny_run, torch.device("cpu"))
    a, _ = generate(gan, 10, torch.device("cpu"), seed=3, batch_size=10)
    b, _ = generate(gan, 10, torch.device("cpu"), seed=3, batch_size=10)
    c, _ = generate(gan, 10, torch.device("cpu"), seed=4, batch_size=10)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_interpolation_grid(tiny_run, tmp_path):
    run_sample(SampleArgs(ckpt=str(tiny_run), interpolate=5, rows=3,
                          out=str(tmp_path / "interp.png"), device="cpu"))
    assert Image.open(tmp_path / "interp.png").size == (5 * 30 + 2, 3 * 30 + 2)


def test_folder_of_png_files(tiny_run, tmp_path):
    run_sample(SampleArgs(ckpt=str(tiny_run), n=12, out=str(tmp_path / "imgs") + "/",
                          device="cpu"))
    files = sorted((tmp_path / "imgs").glob("*.png"))
    assert len(files) == 12 and Image.open(files[0]).size == (28, 28)


def test_slerp_endpoints_and_norm():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 16, generator=gen), torch.randn(4, 16, generator=gen)
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    # the midpoint keeps a typical Gaussian norm (a linear mix would shrink it)
    mid = path[2].norm(dim=1)
    assert (mid > 0.9 * torch.minimum(a.norm(dim=1), b.norm(dim=1))).all()


def test_perturb_rows_nudge_each_latent_further_from_the_command_line(tiny_run, tmp_path):
    out = run_gan("sample", f"ckpt={tiny_run}", "perturb=0.1,0.3,1.0", "rows=3", "out=p.png",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert Image.open(tmp_path / "p.png").size == (4 * 30 + 2, 3 * 30 + 2)


def test_perturbation_moves_the_output_more_as_the_amount_grows(tiny_run):
    from gancli.sampling import perturbation_grid

    gan, _ = load_gan(tiny_run, torch.device("cpu"))
    grid = perturbation_grid(gan, 4, [0.0, 0.01, 2.0], torch.device("cpu"), seed=0)
    rows = grid.view(4, 4, -1)
    assert torch.equal(rows[:, 0], rows[:, 1])  # amount 0 is the latent itself
    base = gan.generate(gan.sample_latent(4, "cpu", torch.Generator().manual_seed(0)))
    assert torch.allclose(rows[:, 0], base.view(4, -1), atol=1e-6)
    small = (rows[:, 2] - rows[:, 0]).norm(dim=1)
    large = (rows[:, 3] - rows[:, 0]).norm(dim=1)
    assert torch.all(small < large)


def test_bad_perturb_amounts_are_one_line(tiny_run, tmp_path):
    out = run_gan("sample", f"ckpt={tiny_run}", "perturb=a,b", cwd=tmp_path)
    assert out.returncode == 1 and "perturb takes amounts separated by commas" in out.stderr

"""FID speed: gancli's feature extraction and Fréchet distance against pytorch-fid's, on the
same device, the same folder of PNG files and the same weights, in one run.

    python benchmarks/fid_speed.py --n 200                # CPU here; GPU when there is one
    python benchmarks/fid_speed.py --n 5000 --device cuda --batch-size 100

Without the real weights file (torch hub's cache, or --weights) both run with the same random
weights: speed does not depend on the values. The two implementations alternate for --rounds
rounds and the best time of each counts, so load from other processes affects both alike.
Prints a Markdown table and the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gancli.metrics import inception
from gancli.metrics.extractors import InceptionExtractor, extract
from gancli.metrics.frechet import frechet_distance, gaussian_stats
from gancli.metrics.sources import FolderSource


def random_weights(path: Path) -> Path:
    """Fresh FIDInceptionV3 weights (PyTorch's default init), in pytorch-fid's format."""
    torch.manual_seed(0)
    torch.save(inception.FIDInceptionV3().state_dict(), path)
    return path


def write_images(folder: Path, n: int, size: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        paths.append(folder / f"{i:06d}.png")
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def pytorch_fid_features(weights: Path, device, batch_size: int, workers: int):
    import pytorch_fid.inception
    from pytorch_fid.fid_score import get_activations

    pytorch_fid.inception.load_state_dict_from_url = \
        lambda *a, **k: torch.load(weights, weights_only=True)
    model = pytorch_fid.inception.InceptionV3([3]).to(device).eval()
    return lambda files: get_activations(files, model, batch_size, 2048, device, workers)


def gancli_features(weights: Path, device, batch_size: int, workers: int):
    extractor = InceptionExtractor(device, str(weights))

    def run(files):
        source = FolderSource(files[0].parent, len(files), num_workers=workers)
        return extract(extractor, source.batches(batch_size), device)[0]

    return run


def timed(run, *args) -> tuple[object, float]:
    start = time.perf_counter()
    result = run(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def full_rank_stats(seed: int, scale: float):
    """Statistics of 4096 Gaussian 2048-d samples: full rank, like a real 10k+ image FID."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(0, 1, (2048, 2048)) / 2048 ** 0.5
    return gaussian_stats(rng.normal(0, scale, (4096, 2048)) @ mixing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images")
    parser.add_argument("--size", type=int, default=32, help="image side (CIFAR-10: 32)")
    parser.add_argument("--batch-size", type=int, default=50, help="both (pytorch-fid's: 50)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds")
    args = parser.parse_args()

    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = args.weights or inception.default_weights_path()
        real = weights.is_file()
        if not real:
            weights = random_weights(tmp / "random.pth")
        files = write_images(tmp / "images", args.n, args.size)
        theirs = pytorch_fid_features(weights, device, args.batch_size, args.workers)
        ours = gancli_features(weights, device, args.batch_size, args.workers)
        for run in (theirs, ours):  # warm-up: allocator, cuDNN algorithm choice
            run(files[:args.batch_size])
        # alternate the two, best of each: load from other processes hits both alike
        t_feat, o_feat = [], []
        for _ in range(args.rounds):
            act_theirs, seconds = timed(theirs, files)
            t_feat.append(seconds)
            act_ours, seconds = timed(ours, files)
            o_feat.append(seconds)
    from pytorch_fid.fid_score import calculate_frechet_distance

    stats1, stats2 = full_rank_stats(0, 1.0), full_rank_stats(1, 1.1)
    t_fd, o_fd = [], []
    for _ in range(args.rounds):
        t_value, seconds = timed(calculate_frechet_distance, *stats1, *stats2)
        t_fd.append(seconds)
        o_value, seconds = timed(frechet_distance, *stats1, *stats2)
        o_fd.append(seconds)
    t_feat, o_feat, t_fd, o_fd = min(t_feat), min(o_feat), min(t_fd), min(o_fd)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; {args.n} PNG images {args.size}x{args.size}; batch {args.batch_size};"
          f" {args.workers} loader workers; {'real' if real else 'random'} Inception weights;"
          f" best of {args.rounds} alternating rounds")
    print("| implementation | features, images/s | Fréchet distance (2048-d), s |")
    print("|---|---|---|")
    print(f"| pytorch-fid {_version()} | {args.n / t_feat:.1f} | {t_fd:.2f} |")
    print(f"| gancli | {args.n / o_feat:.1f} | {o_fd:.2f} |")
    print(f"| gancli / pytorch-fid | {t_feat / o_feat:.2f}x faster | {t_fd / o_fd:.1f}x faster |")
    diff = np.abs(act_ours - act_theirs).max() / max(np.abs(act_theirs).max(), 1e-12)
    print(f"largest feature difference, relative to the largest feature: {diff:.1e}; "
          f"Fréchet distances {float(np.real(t_value)):.6f} (pytorch-fid) and {o_value:.6f} "
          f"(gancli) on full-rank 2048-d statistics")


def _version() -> str:
    from importlib.metadata import version

    return version("pytorch-fid")


if __name__ == "__main__":
    main()

"""Real-data features cached on disk, keyed by a hash of everything that changes them: the
source (dataset config with its split, or folder/file identity), the image count and subset
seed, and the extractor's protocol (network, weights hash, resize)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gancli.metrics.frechet import gaussian_stats

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("GANCLI_CACHE") or Path.home() / ".cache" / "gancli")


@dataclass
class RealStats:
    features: np.ndarray  # float32 (N, D)
    mu: np.ndarray
    sigma: np.ndarray
    path: Path | None = None  # the cache file
    reused: bool = False  # read from the cache rather than computed


def cache_key(source: dict, protocol: dict) -> str:
    # the weights' location does not change the features; their hash (in protocol) does
    extractor = {k: v for k, v in protocol.items() if k != "weights"}
    blob = json.dumps({"version": FORMAT_VERSION, "source": source, "extractor": extractor},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cache_path(cache_dir: str | Path, source: dict, protocol: dict) -> Path:
    return Path(cache_dir).expanduser() / "real_stats" / f"{cache_key(source, protocol)}.npz"


def load(path: Path) -> RealStats | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            return RealStats(f["features"], f["mu"], f["sigma"], path, reused=True)
    except (OSError, KeyError, ValueError):  # missing, or a partial/corrupt file: recompute
        return None


def save(path: Path, stats: RealStats, source: dict, protocol: dict) -> None:
    """Written to a temporary file and renamed, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, features=stats.features, mu=stats.mu, sigma=stats.sigma,
                     key=json.dumps({"source": source, "extractor": protocol}, sort_keys=True))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def real_stats(source, protocol: dict, compute_features, cache_dir: str | Path | None
               ) -> RealStats:
    """Cached statistics of `source`, or `compute_features()` and cache them."""
    description = source.describe()
    path = cache_path(cache_dir or default_cache_dir(), description, protocol)
    cached = load(path)
    if cached is not None:
        return cached
    features = compute_features()
    mu, sigma = gaussian_stats(features)
    stats = RealStats(features, mu, sigma, path)
    save(path, stats, description, protocol)
    return stats

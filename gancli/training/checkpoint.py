"""Checkpoints: plain state dicts plus the resolved config, written atomically, and read
with `torch.load(weights_only=True)` so a file can never run code on load."""

from __future__ import annotations

import os
import pickle
import random
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from gancli.errors import GanError

FORMAT = "gancli-checkpoint"
VERSION = 1


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`:
    a crash at any moment leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def rotate_checkpoints(folder: Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` step_*.pt files (0 keeps them all)."""
    if keep_last > 0:
        for old in sorted(folder.glob("step_*.pt"))[:-keep_last]:
            old.unlink()


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a gancli checkpoint; every failure is one GanError line naming the file."""
    path = Path(path)
    if path.is_dir():  # a run directory: take its latest checkpoint
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise GanError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if unsafe is None:  # not a pickle of disallowed objects: damaged bytes
            raise GanError(f"cannot read checkpoint {path}: truncated or corrupt") from None
        raise GanError(
            f"refusing to load {path}: it holds code ({unsafe.group(1)}), not just tensors and "
            f"plain data; weights_only=True rejected it and none of it was run"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise GanError(f"cannot read checkpoint {path}: truncated or corrupt ({err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanError(f"{path} is not a gancli checkpoint")
    return state


def rng_state() -> dict:
    """Every random number generator a run draws from, in weights_only-safe types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value):
    # random.setstate wants the nested tuples back; some loaders return lists
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value

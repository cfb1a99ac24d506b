"""Checkpoints: plain state dicts plus the resolved config, written atomically, and read
with `torch.load(weights_only=True)` so a file can never run code on load.

Each file carries a format name, a version and a SHA-256 checksum over every tensor in it
(any nested dict or list of tensors, whatever the keys), verified on load: a flipped bit
in the weights is an error, not a silently different model.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import pickletools
import random
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from gancli.errors import GanError

FORMAT = "gancli-checkpoint"
VERSION = 2  # 2: adds "checksum"; version 1 files (no checksum) still load
TMP_SUFFIX = ".tmp"
STALE_TMP_S = 0.0  # temporary files older than this are removed at start (the run lock
# guarantees no other writer, so any left over is from a killed process)

# What every checkpoint holds, and its type; a model is rebuilt from these (`gan sample`,
# `gan eval`), and a resume checks more (resume.RESUME_KEYS).
REQUIRED = {"config": dict, "data_info": dict, "step": int}


# --- checksum ----------------------------------------------------------------------------

def _tensors(value, prefix: str = ""):
    """(path, tensor) for every tensor in a nested dict/list/tuple, in a fixed order."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for key in sorted(value, key=repr):
            yield from _tensors(value[key], f"{prefix}/{key!r}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _tensors(item, f"{prefix}[{i}]")


def tensor_checksum(state: dict) -> str:
    """SHA-256 of every tensor's path, dtype, shape and bytes: any nested layout of keys."""
    digest = hashlib.sha256()
    for path, tensor in _tensors({k: v for k, v in state.items() if k != "checksum"}):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{path}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


# --- writing -----------------------------------------------------------------------------

def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`:
    a crash at any moment leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {"format": FORMAT, "version": VERSION, **state}
    full["checksum"] = tensor_checksum(full)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                torch.save(full, f)
            except RuntimeError as err:  # torch's writer reports a failed write this way
                raise _write_error(err, path) from None
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _write_error(err: RuntimeError, path: Path) -> OSError:
    """torch.save's RuntimeError for a failed write, as the OSError it stands for."""
    try:
        full = os.statvfs(path.parent).f_bavail == 0
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    reason = str(err).splitlines()[0] if str(err) else "write failed"
    return OSError(errno.EIO, f"{os.strerror(errno.EIO)} ({reason[:120]})", str(path))


def link_or_copy(source: str | Path, target: str | Path) -> Path:
    """Make `target` the same file as `source` (a hard link: no second copy on disk), or a
    copy where the filesystem has no hard links; replaced atomically either way."""
    source, target = Path(source), Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.link{TMP_SUFFIX}")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files a killed writer left in `folder` (call with the run lock
    held, so none of them belongs to a live process)."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for tmp in folder.glob(f".*{TMP_SUFFIX}"):
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime >= STALE_TMP_S:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


def rotate_checkpoints(folder: Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` step_*.pt files (0 keeps them all)."""
    if keep_last > 0:
        for old in sorted(folder.glob("step_*.pt"))[:-keep_last]:
            old.unlink()


# --- reading -----------------------------------------------------------------------------

ALLOWED_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode",
                           "numpy.core.multiarray", "numpy._core.multiarray", "numpy.dtype",
                           "builtins.set", "builtins.frozenset", "builtins.bytearray")


def _pickle_bytes(path: Path) -> bytes:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            return archive.read(name) if name else b""
    return path.read_bytes()


def code_in_pickle(path: Path) -> str | None:
    """The first global a checkpoint's pickle imports that is not a tensor or plain data
    (e.g. 'posix.system'), found by reading the opcodes only: nothing is executed."""
    try:
        data = _pickle_bytes(path)
    except (OSError, zipfile.BadZipFile, KeyError):
        return None
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(data):
            name = None
            if op.name == "GLOBAL":
                name = str(arg).replace(" ", ".")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                name = f"{strings[-2]}.{strings[-1]}"
            elif op.name == "INST":
                name = str(arg).replace(" ", ".")
            elif isinstance(arg, str):
                strings.append(arg)
            if name and not name.startswith(ALLOWED_GLOBAL_PREFIXES):
                return name
    except Exception:  # damaged or not a pickle: what was read so far is all we know
        return None
    return None


def _looks_like_text(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if not head or head.startswith((b"PK\x03\x04", b"\x80")):
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\n\r\t" for c in text)


def _verify(state, path: Path, required: dict) -> dict:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GanError(f"{path} is not a gancli checkpoint")
    version = state.get("version")
    if not isinstance(version, int) or version < 1:
        raise GanError(f"checkpoint {path} has no valid format version ({version!r})")
    if version > VERSION:
        raise GanError(f"checkpoint {path} has format version {version}; this gancli reads "
                       f"up to {VERSION}: upgrade gancli")
    for key, kind in {"step": int, **required}.items():
        require(state, key, kind, path)
    if version >= 2:
        stored = state.get("checksum")
        if not isinstance(stored, str):
            raise GanError(f"checkpoint {path} is corrupt: its checksum is missing")
        if tensor_checksum(state) != stored:
            raise GanError(f"checkpoint {path} is corrupt: its tensors do not match the "
                           f"checksum written with them (damaged on disk or in transfer)")
    return state


def require(state: dict, key: str, kind: type | tuple, path: Path):
    """state[key], which must be of type `kind`: otherwise one line naming the key."""
    if key not in state:
        raise GanError(f"checkpoint {path} is incomplete: it has no '{key}'")
    value = state[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise GanError(f"checkpoint {path} is invalid: '{key}' is a {type(value).__name__}, "
                       f"not a {want}")
    return value


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or a run directory's `checkpoints/last.pt`."""
    path = Path(path)
    return path / "checkpoints" / "last.pt" if path.is_dir() else path


def load_checkpoint(path: str | Path, map_location="cpu", required: dict | None = None) -> dict:
    """Load a gancli checkpoint; every failure is one GanError line naming the file.
    `required` maps keys that must be present to their types (the step always is)."""
    path = resolve_checkpoint_path(path)
    if not path.is_file():
        raise GanError(f"checkpoint not found: {path}")
    if _looks_like_text(path):
        raise GanError(f"{path} is a text file, not a gancli checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        code = code_in_pickle(path)
        if code is not None:
            raise GanError(
                f"refusing to load {path}: it holds code ({code}), not just tensors and "
                f"plain data; weights_only=True rejected it and none of it was run"
            ) from None
        raise GanError(f"cannot read checkpoint {path}: truncated or corrupt") from None
    except MemoryError:
        raise GanError(f"cannot read checkpoint {path}: out of memory") from None
    except Exception as err:  # RuntimeError, EOFError, BadZipFile, OSError, KeyError, ...
        code = code_in_pickle(path)
        if code is not None:
            raise GanError(f"refusing to load {path}: it holds code ({code}), not just "
                           f"tensors and plain data; none of it was run") from None
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise GanError(f"cannot read checkpoint {path}: truncated or corrupt "
                       f"({reason[:200]})") from None
    return _verify(state, path, required or {})


def _step_of(path: Path) -> int | None:
    try:
        return int(path.stem.split("_", 1)[1])
    except (IndexError, ValueError):
        return None


def newest_checkpoint(ckpt_dir: str | Path, warn=None,
                      required: dict | None = None) -> tuple[Path, dict] | None:
    """The checkpoint a resume should continue from: the newest that loads and verifies,
    among last.pt and the periodic step_*.pt (a step file written just before a failed or
    interrupted write of last.pt is newer than last.pt). None when there is none."""
    ckpt_dir = Path(ckpt_dir)
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    candidates = [(s, p) for p in ckpt_dir.glob("step_*.pt") if (s := _step_of(p)) is not None]
    candidates.sort(reverse=True)
    last = ckpt_dir / "last.pt"
    best: tuple[Path, dict] | None = None
    if last.is_file():
        try:
            best = (last, load_checkpoint(last, required=required))
        except GanError as err:
            warn(f"{err}; looking for an older checkpoint")
    for step, path in candidates:
        if best is not None and step <= best[1]["step"]:
            break
        try:
            state = load_checkpoint(path, required=required)
        except GanError as err:
            warn(f"{err}; skipped")
            continue
        if best is not None:
            warn(f"{path.name} (step {state['step']}) is newer than last.pt (step "
                 f"{best[1]['step']}); continuing from {path.name}")
        return path, state
    return best


def describe_last_good(ckpt_dir: str | Path) -> str:
    """For messages: the newest checkpoint on disk, or that there is none yet."""
    ckpt_dir = Path(ckpt_dir)
    files = [p for p in (ckpt_dir / "last.pt", *ckpt_dir.glob("step_*.pt")) if p.is_file()]
    if not files:
        return "there is no checkpoint yet"
    newest = max(files, key=lambda p: (p.stat().st_mtime_ns, p.name == "last.pt"))
    return f"the last good checkpoint is {newest}"


# --- the config stored in a checkpoint -------------------------------------------------

def stored_config(state: dict, path: str | Path = "checkpoint"):
    """The typed Config a checkpoint was trained with, read without resolving any
    interpolation in it."""
    from omegaconf import OmegaConf

    from gancli.config import escaped, validate

    raw = require(state, "config", dict, Path(path))
    try:
        return validate(OmegaConf.create(escaped(raw)))
    except GanError as err:
        raise GanError(f"checkpoint {path} holds an invalid config: {err}") from None


# --- random number generators -------------------------------------------------------------

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

"""One writer per run directory: an OS file lock (fcntl.flock) on `<run dir>/.gancli.lock`.

The kernel releases the lock when its process dies, however it dies (kill -9 included), so a
lock is never stale. The file keeps the holder's pid, for the message a second writer gets.
A process may take the lock of one run directory more than once (the CLI takes it before
Hydra writes into the directory, the training loop again): the second time is a no-op.
"""

from __future__ import annotations

import fcntl
import functools
import os
from pathlib import Path

from gancli.errors import GanError

LOCK_NAME = ".gancli.lock"
_held: dict[Path, int] = {}  # run directory -> open file descriptor holding its lock


def _key(run_dir: str | Path) -> Path:
    return Path(run_dir).absolute()


def holder(run_dir: str | Path) -> int | None:
    """The pid written by the process holding the lock, when it can be read."""
    try:
        return int((Path(run_dir) / LOCK_NAME).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def acquire(run_dir: str | Path) -> None:
    """Take the run directory's lock, or fail in one line naming the pid that holds it."""
    key = _key(run_dir)
    if key in _held:
        return
    try:
        key.mkdir(parents=True, exist_ok=True)
        fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise GanError(f"cannot lock the run directory {key}: {err.strerror or err}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = holder(key)
        who = f"process {pid}" if pid else "another process"
        raise GanError(f"run directory {key} is in use: {who} is training in it; wait for it "
                       f"to finish, stop it, or choose another hydra.run.dir") from None
    except OSError as err:  # a filesystem without flock: go on without the guard
        os.close(fd)
        import sys

        print(f"warning: cannot lock {key} ({err.strerror}); nothing stops a second writer",
              file=sys.stderr)
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        pass  # the lock holds; only the pid in the message is lost
    _held[key] = fd


def release(run_dir: str | Path) -> None:
    fd = _held.pop(_key(run_dir), None)
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def release_all() -> None:
    for key in list(_held):
        release(key)


def released_after(train):
    """Decorate `train(cfg, run_dir, ...)`: the lock it takes on run_dir is released when it
    returns or raises (a process that calls it twice, or resumes after a failure, may)."""

    @functools.wraps(train)
    def wrapper(cfg, run_dir, *args, **kwargs):
        try:
            return train(cfg, run_dir, *args, **kwargs)
        finally:
            release(run_dir)

    return wrapper

"""Paths the user types: `~` and environment variables expanded, and output locations checked
before any work is done, so a bad `out=` fails in one line instead of after the computing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gancli.errors import ConfigError, GanError


def expand_user_path(value: str | None) -> str | None:
    """`~/x`, `$HOME/x`, `${HOME}/x` -> absolute text; anything else unchanged."""
    if not value:
        return value
    return os.path.expandvars(os.path.expanduser(value))


def check_writable(path: str | Path, key: str, folder: bool = False) -> None:
    """Fail in one line unless `path` (a file, or a folder when `folder`) can be written:
    its folder is created when missing and a probe file is written and removed there."""
    path = Path(path)
    parent = path if folder else path.parent
    if not folder and path.is_dir():
        raise GanError(f"{key}={path} is a folder; give a file name")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".gancli-probe-"):
            pass
    except OSError as err:
        raise GanError(f"cannot write {key}={path}: {err.strerror or err}") from None


def output_target(out_arg: str) -> tuple[Path, bool]:
    """`out=` as (path, whether it is a folder): a .png grid, an .npz file or a folder ending
    in /, checked writable before any work starts."""
    out = Path(out_arg)
    to_folder = out_arg.endswith(("/", "\\")) or out.is_dir()
    if not to_folder and out.suffix.lower() not in (".png", ".npz"):
        raise ConfigError(f"out={out_arg}: use a .png grid, an .npz file, or a folder "
                          f"ending in /")
    check_writable(out, "out", folder=to_folder)
    return out, to_folder


def write_error(key: str, path: str | Path, err: OSError) -> GanError:
    return GanError(f"cannot write {key}={path}: {err.strerror or err}")

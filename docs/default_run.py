"""Regenerate the README's picture of the default run, so it stays what `gan train` draws.

    python docs/default_run.py                      # the default run (3,000 steps), seed 0
    python docs/default_run.py --out x.png train.steps=4 ...   # any overrides (tests use this)

It trains `gan train` with the given overrides into a temporary run directory (or --run-dir)
and copies the run's last sample grid to --out (default docs/default_run_step3000.png).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
DEFAULT_OUT = DOCS / "default_run_step3000.png"


def last_grid(run_dir: Path) -> Path:
    """The run's last sample grid (samples/step_<N>.png with the highest N)."""
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if not grids:
        raise SystemExit(f"error: {run_dir}/samples holds no step_*.png grid")
    return grids[-1]


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="where the run goes (default: a temporary folder, removed after)")
    parser.add_argument("overrides", nargs="*", help="gan train overrides (none: the default)")
    args = parser.parse_args(argv)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="gancli_default_run_"))
    try:
        subprocess.run([sys.executable, "-m", "gancli", "train", *args.overrides,
                        f"hydra.run.dir={run_dir}"], check=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(last_grid(run_dir), args.out)
    except subprocess.CalledProcessError as err:
        raise SystemExit(err.returncode) from None
    finally:
        if args.run_dir is None:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(f"written: {args.out}")
    return args.out


if __name__ == "__main__":
    main()

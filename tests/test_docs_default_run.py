"""docs/default_run.py regenerates the README's picture from a real `gan train` run."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO, TINY


def test_the_script_copies_the_runs_last_grid(tmp_path):
    out, run = tmp_path / "picture.png", tmp_path / "run"
    done = subprocess.run([sys.executable, str(REPO / "docs" / "default_run.py"), "--out",
                           str(out), "--run-dir", str(run), *TINY, "device.threads=1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (run / "samples" / "step_0000004.png").read_bytes()


def test_the_readme_shows_the_picture_the_script_writes():
    sys.path.insert(0, str(REPO / "docs"))
    try:
        import default_run
    finally:
        sys.path.pop(0)
    readme = (REPO / "README.md").read_text()
    assert f"({default_run.DEFAULT_OUT.relative_to(REPO)})" in readme
    assert "python docs/default_run.py" in readme

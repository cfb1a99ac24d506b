"""`gan` must work from a non-editable install: the configs ship inside the wheel."""

import subprocess
import sys
import zipfile

import pytest

from tests.helpers import REPO


@pytest.mark.slow
def test_wheel_ships_the_hydra_configs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                          str(tmp_path), str(REPO)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("gancli-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "gancli/conf/config.yaml" in names
    assert {"gancli/conf/model/dcgan.yaml", "gancli/conf/dataset/mnist5k.yaml"} <= names
    assert "gancli/training/loop.py" in names
    assert "gancli/metrics/weights/mnist5k_classifier.pt" in names  # gan eval extractor=mnist
    entry_points = [n for n in names if n.endswith("entry_points.txt")]
    assert "gan = gancli.cli:main" in zipfile.ZipFile(wheel).read(entry_points[0]).decode()


def test_every_package_folder_is_listed_in_pyproject():
    """setuptools warns once per file for a data folder missing from `packages` (hundreds of
    lines on a first `make`)."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    folders = {"gancli": REPO / "gancli", "gancli.conf": REPO / "conf"}
    found = set()
    for name, root in folders.items():
        for folder in [root, *root.rglob("*")]:
            if (folder.is_dir() and "__pycache__" not in folder.parts
                    and any(f.is_file() for f in folder.iterdir())):
                rel = folder.relative_to(root).parts
                found.add(".".join((name, *rel)))
    assert found <= listed, f"add to pyproject's packages: {sorted(found - listed)}"


@pytest.mark.slow
def test_building_the_package_warns_about_no_missing_package(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v",
                          "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "absent from the `packages` configuration" not in out.stdout + out.stderr

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

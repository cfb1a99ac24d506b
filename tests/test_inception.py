"""The FID Inception network: pytorch-fid's weights format, inputs, and the offline errors."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from gancli.cli import main
from gancli.errors import GanError
from gancli.metrics import inception
from gancli.metrics.inception import FIDInceptionV3, load_fid_inception, resolve_weights
from tests.inception_weights import random_fid_inception_state, write_random_fid_weights


def test_module_names_match_pytorch_fid_weights_format():
    assert set(FIDInceptionV3().state_dict()) == set(random_fid_inception_state())


def test_preprocess_matches_pytorch_fid_totensor_resize_scale():
    import torch.nn.functional as F

    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    theirs = F.interpolate(images.float() / 255, size=(299, 299), mode="bilinear",
                           align_corners=False) * 2 - 1
    assert torch.equal(FIDInceptionV3.preprocess(images), theirs)
    grey = images[:, :1]
    assert torch.equal(FIDInceptionV3.preprocess(grey),
                       FIDInceptionV3.preprocess(grey.expand(-1, 3, -1, -1)))


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch hub cache and a download address that refuses at once."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(inception, "WEIGHTS_URL", "http://127.0.0.1:9/" + inception.WEIGHTS_NAME)
    return tmp_path / "torch" / "hub" / "checkpoints" / inception.WEIGHTS_NAME


def test_missing_weights_offline_say_where_to_put_the_file(offline):
    with pytest.raises(GanError) as err:
        resolve_weights()
    message = str(err.value)
    assert "\n" not in message
    assert str(offline) in message and "inception_weights=PATH" in message
    assert not offline.parent.exists() or not any(offline.parent.iterdir())  # no partial file


def test_gan_eval_offline_without_weights_is_one_line_on_stderr(offline, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (32, 32)).save(images / "0.png")
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--fid", f"real={images}", f"fake={images}",
              f"cache_dir={tmp_path / 'cache'}"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(offline) in err


def test_weights_in_the_torch_hub_cache_are_found_without_download(offline):
    offline.parent.mkdir(parents=True)
    write_random_fid_weights(offline)
    assert resolve_weights() == offline


def test_explicit_weights_path_must_exist(tmp_path):
    with pytest.raises(GanError, match="does not exist"):
        resolve_weights(tmp_path / "nope.pth")


def test_a_file_of_other_weights_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(GanError, match="not the FID Inception weights"):
        load_fid_inception(path)

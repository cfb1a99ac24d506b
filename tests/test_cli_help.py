"""`gan <command> --help`: what the command does, every key of its schema with its type,
default and meaning (read from the source's comments), and examples; unknown keys get
'did you mean'."""

from __future__ import annotations

import pytest

from gancli.cli import COMMANDS, HELP, _schema_help, command_help, usage_text
from gancli.config import GROUPS
from gancli.usage import field_comments, schema_keys
from tests.helpers import run_gan


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_is_printed_not_an_error(tmp_path, command):
    out = run_gan(command, "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: gan {command}")
    assert "examples:" in out.stdout
    assert not list(tmp_path.iterdir())  # nothing ran: no outputs/ folder


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_key_of_every_command_is_listed_with_a_description(command):
    keys = _schema_help(command, [])
    text = command_help(command, [])
    for key in keys:
        assert key.doc, f"gan {command}: {key.name} has no comment in its dataclass"
        assert f"  {key.name}  " in text or f"  {key.name} " in text
        assert key.doc.split()[0] in text


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_registered_group_schema_has_a_description_per_key(group):
    for name in GROUPS[group].names():
        config = GROUPS[group].get(name).config
        for key in schema_keys(config, f"{group}.", name_doc="chosen by the group file"):
            assert key.doc, f"{group}={name}: {key.name} has no comment"


def test_train_help_follows_the_groups_chosen():
    mlp = {k.name for k in _schema_help("train", ["model=mlp"])}
    dcgan = {k.name for k in _schema_help("train", [])}
    assert "model.layers_g" in mlp and "model.layers_g" not in dcgan
    assert {"train.steps", "device.threads", "seed", "dataset.holdout"} <= dcgan
    steps = next(k for k in _schema_help("train", []) if k.name == "train.steps")
    assert (steps.type, steps.default, steps.doc) == ("int", "3000", "generator updates")


def test_comments_are_read_from_beside_or_above_a_field():
    from gancli.config import TrainConfig

    docs = field_comments(TrainConfig)
    assert docs["steps"] == "generator updates"
    assert docs["metric"].startswith("value the entrypoint returns")  # the lines above it


def test_usage_lists_every_command():
    text = usage_text()
    for name in COMMANDS:
        assert f"  {name} " in text
    assert set(HELP) == set(COMMANDS)  # every command has its --help


@pytest.mark.parametrize("args,needle", [
    (["sample", "ckpt=x.pt", "nn=4"], "unknown key 'nn' for gan sample; did you mean n?"),
    (["eval", "ckpt=x.pt", "extracter=mnist"], "did you mean extractor?"),
    (["summary", ".", "metrik=fid"], "did you mean metric?"),
    (["train", "train.step=10"], "unknown key 'train.step' for gan train; did you mean "
                                 "train.steps"),
    (["train", "model.widht_g=8"], "did you mean model.width_g"),
])
def test_unknown_keys_get_did_you_mean(tmp_path, args, needle):
    out = run_gan(*args, cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert needle in out.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_key_of_one_choice_in_a_group_sweep_passes_the_check():
    from gancli.cli import check_train_keys

    check_train_keys(["-m", "model=dcgan,mlp", "model.layers_g=2"])  # mlp has it


def test_an_added_unknown_key_also_gets_did_you_mean(tmp_path):
    """Hydra's advice for a typo, `+train.step=10`, fails in one line naming the key."""
    out = run_gan("train", "+train.step=10", "device.threads=1", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "did you mean train.steps?" in out.stderr

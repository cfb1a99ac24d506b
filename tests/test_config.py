import pytest
from omegaconf import OmegaConf

from gancli.config import from_container, to_container
from gancli.errors import ConfigError
from gancli.models.init import Init
from tests.helpers import compose_config, run_gan


def test_defaults_validate_to_typed_dataclasses():
    cfg = compose_config()
    assert cfg.dataset.name == "mnist5k" and cfg.model.name == "dcgan"
    assert cfg.loss.name == "gan" and cfg.optimizer.name == "adam"
    assert cfg.model.init is Init.dcgan
    assert cfg.train.steps > 0 and isinstance(cfg.train.batch_size, int)


@pytest.mark.parametrize("override,needle", [
    ("train.steps=0", "train.steps must be > 0, got 0"),
    ("train.steps=-5", "train.steps must be > 0, got -5"),
    ("train.batch_size=0", "train.batch_size must be > 0"),
    ("train.steps=many", "'train.steps'"),
    ("model.init=gaussian", "'model.init'"),
    ("optimizer.lr=-1", "optimizer.lr must be > 0"),
    ("device=cpu", None),
])
def test_bad_values_fail_naming_the_key(override, needle):
    if needle is None:
        compose_config([override])
        return
    with pytest.raises(ConfigError) as err:
        compose_config([override])
    assert needle in str(err.value)


def test_enum_error_lists_allowed_values():
    with pytest.raises(ConfigError) as err:
        compose_config(["model.init=gaussian"])
    for allowed in ("dcgan", "xavier", "kaiming", "orthogonal"):
        assert allowed in str(err.value)


def test_unknown_key_in_a_block_is_rejected():
    with pytest.raises(ConfigError, match="model"):
        compose_config(["+model.depth=3"])


def test_round_trip_through_plain_container():
    cfg = compose_config(["model=mlp", "dataset=ring8"])
    data = to_container(cfg)
    assert data["model"]["init"] == "default"  # enums stored as plain strings
    OmegaConf.create(data)  # plain builtins only
    assert from_container(data) == cfg


@pytest.mark.parametrize("old,new", [("model.hidden_g", "model.width_g"),
                                     ("model.hidden_d", "model.width_d"),
                                     ("model.d.spectral_norm", "model.spectral_norm_d")])
def test_an_old_spelling_is_one_line_naming_the_new_key(tmp_path, old, new):
    out = run_gan("train", "model=mlp", f"{old}=64", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == f"error: {old} was renamed: use {new}"
    assert not (tmp_path / "outputs").exists()  # refused before Hydra made a run folder


def test_an_old_spelling_in_a_yaml_block_is_refused_too():
    from gancli.config import validate

    raw = OmegaConf.to_container(OmegaConf.structured(compose_config(["model=mlp"])),
                                 enum_to_str=True)
    raw["model"]["hidden_g"] = 64
    with pytest.raises(ConfigError, match="model.hidden_g was renamed: use model.width_g"):
        validate(raw)


def test_every_model_group_spells_widths_and_per_network_options_alike():
    from dataclasses import fields

    from gancli.registry import MODELS

    for name in MODELS.names():
        entry = MODELS.get(name)
        if not entry.builder.__module__.startswith("gancli."):
            continue  # a family a test registered (the README's example)
        keys = {f.name for f in fields(entry.config)}
        assert not keys & {"hidden_g", "hidden_d", "d"}, name  # one spelling, suffixes only
        if name not in ("ae", "vae"):
            assert {"width_g", "width_d"} <= keys, name

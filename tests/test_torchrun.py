"""How `gan train` prepares Hydra's arguments under torchrun (one process here; the real
multi-rank runs are in test_distributed.py)."""

from __future__ import annotations

import datetime

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from gancli import torchrun
from gancli.cli import check_group_choices
from gancli.errors import ConfigError, GanError


@pytest.fixture
def no_torchrun(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "SUBMITIT_EXECUTOR"):
        monkeypatch.delenv(key, raising=False)


def test_outside_torchrun_the_arguments_are_untouched(no_torchrun):
    args = ["model=mlp", "-m", "optimizer.lr=1e-3,2e-3"]
    assert torchrun.hydra_args(args) == args


def test_multirun_under_torchrun_needs_a_fixed_sweep_dir(no_torchrun, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(GanError, match="hydra.sweep.dir"):
        torchrun.hydra_args(["-m", "optimizer.lr=1e-3,2e-3"])
    with pytest.raises(GanError, match="a plain path"):  # each rank's clock would differ
        torchrun.hydra_args(["-m", "hydra.sweep.dir=sweeps/${now:%H-%M-%S}", "seed=1,2"])


def test_rank0_resolves_the_run_dir_pattern_once():
    run_dir = torchrun.resolve_run_dir(["dataset=grid25", "model=mlp"])
    today = datetime.date.today().isoformat()
    assert run_dir.startswith(f"outputs/{today}/") and run_dir.endswith("_grid25_mlp_gan")
    assert torchrun.resolve_run_dir(["model=no_such_model"]) is None  # Hydra will report it
    given = torchrun.resolve_run_dir(["hydra.run.dir=runs/${now:%Y}_${model.name}"])
    assert given == f"runs/{datetime.date.today().year}_dcgan"


@pytest.mark.parametrize("path", ["outputs/2024-01-01/12-00-00_a_b", "/tmp/with space/it's",
                                  "C:\\runs\\x", "a=b,c", "q\\'x", "ends\\"])
def test_quoted_directory_reaches_hydra_unchanged(path):
    override = OverridesParser.create().parse_overrides(
        [f"hydra.run.dir={torchrun.quote(path)}"])[0]
    assert override.value() == path


def test_unknown_search_space_is_one_line_listing_the_choices():
    with pytest.raises(ConfigError, match="grid25_optuna"):
        check_group_choices(["hparams_search=nope"])
    check_group_choices(["hparams_search=grid25_optuna", "hydra/launcher=joblib"])

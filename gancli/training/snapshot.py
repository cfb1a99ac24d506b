"""What a checkpoint holds: written by the training loop, read by resume, `gan sample` and
`gan eval`, all through this module, so the layout lives in one place.

Schema 2 (this one): the family's whole `state_dict` under "model" (networks, buffers such as a
fitted prior, and any state of its own), one optimizer and one schedule per parameter group,
the EMA copy of the family's sampler, the update context's GradScalers, and what continues the
run exactly (data sampler, RNG states, latent stream, fixed sample noise). Schema 1 checkpoints
(fixed "G"/"D"/"opt_g"/"opt_d" keys, before model families) are read by converting them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gancli.config import Config, current_spelling, to_container
from gancli.data.base import DataInfo
from gancli.errors import ConfigError
from gancli.models import Family, build_model
from gancli.training.checkpoint import REQUIRED, load_checkpoint, require, stored_config

SCHEMA = 2


def snapshot(*, cfg: Config, info: DataInfo, step: int, family: Family,
             optimizers: dict, schedules: dict, ema, sampler, rng: dict, fixed_z: torch.Tensor,
             skipped: int, noise_rng: torch.Tensor, step_context, eval_best) -> dict:
    """The dict a checkpoint file holds (gancli.training.checkpoint writes it)."""
    return {
        "schema": SCHEMA, "config": to_container(cfg), "data_info": info.to_dict(),
        "step": step, "model": family.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "schedules": {name: s.state_dict() for name, s in schedules.items()},
        "ema": ema.state_dict() if ema else None,
        "sampler": sampler.state_dict(), "rng": rng, "fixed_z": fixed_z.cpu(),
        "skipped": skipped, "noise_rng": noise_rng, "update": step_context.state_dict(),
        "eval_best": eval_best,
    }


def _prefixed(prefix: str, weights: dict) -> dict:
    return {f"{prefix}.{key}": value for key, value in weights.items()}


# What a checkpoint must hold to rebuild its model (`gan sample`, `gan eval`), and to continue
# its run; a file lacking one, or holding the wrong type, is refused in one line.
MODEL_KEYS = {"model": dict}
RESUME_KEYS = {"optimizers": dict, "schedules": dict, "sampler": dict, "rng": dict,
               "fixed_z": torch.Tensor}


def upgrade(state: dict, path) -> dict:
    """An older checkpoint in today's layout: a schema-1 one (one G, one D) rearranged, and
    config keys renamed since under their new names."""
    state = dict(state)
    if isinstance(state.get("config"), dict):
        state["config"] = current_spelling(state["config"])
    if state.get("schema", 1) >= SCHEMA:
        return state
    G, D = require(state, "G", dict, path), require(state, "D", dict, path)
    state["model"] = {**_prefixed("G", G), **_prefixed("D", D)}
    del state["G"], state["D"]
    optimizers = {"d": state.pop("opt_d", None), "g": state.pop("opt_g", None)}
    if all(optimizers.values()):
        state["optimizers"] = optimizers
    schedules = {"d": state.pop("sched_d", None), "g": state.pop("sched_g", None)}
    state["schedules"] = {k: v for k, v in schedules.items() if v}
    state["ema"] = state.pop("g_ema", None)
    old_step = state.pop("train_step", None)
    state["update"] = old_step and {"scalers": {"d": old_step["scaler_d"],
                                                "g": old_step["scaler_g"]}}
    state["schema"] = SCHEMA
    return state


def read(path: str | Path, required: dict | None = None) -> dict:
    """A checkpoint file (or a run directory's last one) in the current schema, holding the
    keys (and types) a model needs and any more `required` names."""
    state = upgrade(load_checkpoint(path, required=REQUIRED), path)
    for key, kind in {**MODEL_KEYS, **(required or {})}.items():
        require(state, key, kind, path)
    return state


def restore_model(family: Family, state: dict, path) -> None:
    try:
        family.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ConfigError(f"checkpoint {path} does not match its model config "
                          f"'{state['config']['model']['name']}': "
                          f"{str(err).splitlines()[0]}") from None


def load_trained(ckpt: str | Path, device: torch.device, ema: bool = True
                 ) -> tuple[Family, dict]:
    """The family a checkpoint was trained with, all its state loaded (the EMA sampler's
    weights in place of the sampler's when `ema` and the run kept one), in eval mode."""
    state = read(ckpt)
    cfg = stored_config(state, ckpt)  # interpolations in it stay unresolved text
    try:
        info = DataInfo.from_dict(state["data_info"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"checkpoint {ckpt} is invalid: its 'data_info' is incomplete") from None
    family = build_model(cfg.model, info)
    restore_model(family, state, ckpt)
    if ema and state.get("ema") is not None:
        try:
            family.sampler.load_state_dict(require(state, "ema", dict, ckpt))
        except (RuntimeError, TypeError, AttributeError) as err:
            raise ConfigError(f"checkpoint {ckpt} does not match its model config "
                              f"'{cfg.model.name}': {str(err).splitlines()[0]}") from None
    return family.to(device).eval(), state

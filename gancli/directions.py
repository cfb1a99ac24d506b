"""Which way is better for each metric a run logs, and which metric a sweep ranks by.

Used by `gan summary` and, through the `gancli_direction` / `gancli_study_seed` resolvers, by
the Optuna sweeper's config (conf/hparams_search/*.yaml), so both agree.
"""

from __future__ import annotations

MINIMIZE, MAXIMIZE = "minimize", "maximize"

# metric -> (direction, why); evaluation metrics carry an extractor prefix (mnist_fid, ...)
DIRECTIONS: dict[str, tuple[str, str]] = {
    "fid": (MINIMIZE, "sample quality: distance to the real features"),
    "kid": (MINIMIZE, "sample quality: distance to the real features"),
    "is": (MAXIMIZE, "sample quality: confident, varied classes"),
    "precision": (MAXIMIZE, "share of samples near real data"),
    "recall": (MAXIMIZE, "share of real data near samples"),
    "classes_covered": (MAXIMIZE, "digit classes the samples cover"),
    "accuracy": (MAXIMIZE, "test accuracy"),
    "loss": (MINIMIZE, "the autoencoder's training loss, not sample quality"),
    "g_loss": (MINIMIZE, "a training loss, not sample quality"),
    # a D that cannot tell real from fake scores 2 ln 2 = 1.386 (non-saturating loss): higher
    # means G fools it more; a proxy only
    "d_loss": (MAXIMIZE, "a proxy: D fooled more; not sample quality, see train.eval_every"),
}
PREFIXES = ("mnist_", "test_", "eval_")


def direction_of(metric: str) -> tuple[str, str] | None:
    """(direction, why) for a known metric, else None."""
    name = metric
    for prefix in PREFIXES:
        name = name.removeprefix(prefix)
    return DIRECTIONS.get(metric) or DIRECTIONS.get(name)


def run_metric(metric: str | None, eval_every: int, eval_metric: str, model: str) -> str:
    """What `gan train` returns to a sweeper (as gancli/training/loop.py resolves
    train.metric): the evaluation metric when the run evaluates, else the family's own."""
    if metric:
        return str(metric)
    if eval_every and int(eval_every) > 0:
        return str(eval_metric)
    return "loss" if str(model) in ("ae", "vae") else "d_loss"


def _direction_resolver(metric, eval_every, eval_metric, model) -> str:
    known = direction_of(run_metric(metric, eval_every, eval_metric, model))
    return known[0] if known else MINIMIZE


def _study_seed_resolver(storage, study_name, seed=0) -> int:
    """The sampler's seed: `seed` for a new study, shifted by the trials a stored study holds,
    so a resumed study draws new trials instead of repeating its first ones."""
    if not storage:
        return int(seed)
    try:
        import optuna

        study = optuna.load_study(study_name=str(study_name), storage=str(storage))
        return int(seed) + len(study.trials)
    except Exception:  # no such study yet (or no optuna): a new study
        return int(seed)


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("gancli_direction"):
        OmegaConf.register_new_resolver("gancli_direction", _direction_resolver)
    if not OmegaConf.has_resolver("gancli_study_seed"):
        OmegaConf.register_new_resolver("gancli_study_seed", _study_seed_resolver)

"""The non-adversarial baselines next to the default GAN: ae, vae and dcgan trained on mnist5k
for the same CPU time, then scored alike by `gan eval` in the project's MNIST classifier's
features (mnist_fid, precision, recall, classes covered).

Equal CPU time, not equal steps: each model's CPU seconds per step are measured first (two
short runs, their difference, so start-up does not count; a first short run absorbs one-time
costs), and its run gets as many steps as fit in --seconds. Everything runs on one thread, so
CPU seconds are also wall seconds on an idle core.

    python benchmarks/baselines.py                       # 180 CPU s each, seed 0
    python benchmarks/baselines.py --seconds 60 --runs outputs/baselines --seed 1
    python benchmarks/baselines.py --grids docs          # also a sample grid per model

Recipes: +experiment=ae_mnist5k, +experiment=vae_mnist5k, and the default run (dcgan).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from common import model_arguments, print_table
from hydra import compose, initialize_config_module

from gancli.config import validate
from gancli.metrics.evaluate import EvalArgs, run_eval
from gancli.sampling import SampleArgs, run_sample
from gancli.training.loop import train

MODELS = {"ae": ["+experiment=ae_mnist5k"], "vae": ["+experiment=vae_mnist5k"], "dcgan": []}
CALIBRATION_STEPS = (10, 40)


def config(model: str, seed: int, steps: int, extra: list[str]):
    with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
        raw = compose(config_name="config", overrides=[
            *MODELS[model], f"seed={seed}", "device=cpu", "device.threads=1",
            f"train.steps={steps}", f"train.sample_every={steps}", f"train.ckpt_every={steps}",
            f"train.log_every={min(50, steps)}", *extra])
    return validate(raw)


def cpu_seconds(model: str, seed: int, steps: int, run_dir: Path, extra: list[str]) -> float:
    start = time.process_time()
    train(config(model, seed, steps, extra), run_dir)
    return time.process_time() - start


def seconds_per_step(model: str, seed: int, extra: list[str]) -> float:
    short, long = CALIBRATION_STEPS
    with tempfile.TemporaryDirectory() as tmp:
        cpu_seconds(model, seed, short, Path(tmp) / "warm", extra)  # one-time costs land here
        a = cpu_seconds(model, seed, short, Path(tmp) / "a", extra)
        b = cpu_seconds(model, seed, long, Path(tmp) / "b", extra)
    if b <= a:
        raise SystemExit(f"{model}: could not time a step ({a:.2f} s for {short} steps, "
                         f"{b:.2f} s for {long}); is the machine idle?")
    return (b - a) / (long - short)


def measure(run_dir: Path, n: int, seed: int) -> dict:
    metrics = run_eval(EvalArgs(ckpt=str(run_dir), extractor="mnist", metrics=["fid", "pr"],
                                n=n, seed=seed, device="cpu"))["metrics"]
    return {key: metrics[key] for key in ("mnist_fid", "mnist_precision", "mnist_recall",
                                          "mnist_classes_covered")}


def main() -> None:
    args = model_arguments(__doc__, MODELS, 180.0, "outputs/baselines",
                           "write <model>.png grids here")

    rows = []
    for model in args.models:
        per_step = seconds_per_step(model, args.seed, args.set)
        steps = max(1, int(args.seconds / per_step))
        run_dir = args.runs / f"{model}_seed{args.seed}"
        wall = time.perf_counter()
        used = cpu_seconds(model, args.seed, steps, run_dir, args.set)
        row = {"model": model, "steps": steps, "cpu_s": round(used, 1),
               "wall_s": round(time.perf_counter() - wall, 1),
               **measure(run_dir, args.n, args.seed)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.grids is not None:
            run_sample(SampleArgs(ckpt=str(run_dir), n=64, seed=args.seed, device="cpu",
                                  out=str(args.grids / f"baseline_{model}.png")))

    print_table(f"mnist5k, {args.seconds:.0f} CPU s per model, one thread, seed {args.seed}, "
                f"gan eval extractor=mnist n={args.n}",
                ("model", "steps", "CPU s", "mnist_fid", "precision", "recall", "classes"),
                [[r["model"], str(r["steps"]), f"{r['cpu_s']:.0f}", f"{r['mnist_fid']:.2f}",
                  f"{r['mnist_precision']:.3f}", f"{r['mnist_recall']:.3f}",
                  str(r["mnist_classes_covered"])] for r in rows])

if __name__ == "__main__":
    main()
